/* A stand-in ntdll for heapdiag's tests: the NT heap structures laid out as a future Windows build
   might (FrontEndHeap at +0x1A8), with the member names of the real ntdll.pdb, RtlpLFHKey and
   RtlpHpHeapGlobals. */
#include <stddef.h>
typedef struct _LIST_ENTRY { struct _LIST_ENTRY *Flink; struct _LIST_ENTRY *Blink; } LIST_ENTRY;
typedef struct _HEAP_ENTRY { unsigned long long PreviousBlockPrivateData; unsigned long long CompactHeader; } HEAP_ENTRY;
typedef struct _HEAP_SEGMENT {
  HEAP_ENTRY Entry; unsigned int SegmentSignature; unsigned int SegmentFlags; LIST_ENTRY SegmentListEntry;
  struct _HEAP *Heap; void *BaseAddress; unsigned int NumberOfPages; unsigned int _pad0;
  HEAP_ENTRY *FirstEntry; HEAP_ENTRY *LastValidEntry; unsigned int NumberOfUnCommittedPages;
  unsigned int NumberOfUnCommittedRanges; unsigned short SegmentAllocatorBackTraceIndex;
  unsigned short Reserved; unsigned int _pad1; LIST_ENTRY UCRSegmentList;
} HEAP_SEGMENT;
typedef struct _HEAP {
  union { HEAP_SEGMENT Segment; struct { HEAP_ENTRY Entry; unsigned int SegmentSignature; }; };
  unsigned int Flags; unsigned int ForceFlags; unsigned int CompatibilityFlags; unsigned int EncodeFlagMask;
  HEAP_ENTRY Encoding; unsigned int Interceptor; unsigned int VirtualMemoryThreshold; unsigned int Signature;
  char _p0[0x110 - 0x9c]; LIST_ENTRY VirtualAllocdBlocks; LIST_ENTRY SegmentList;
  char _p1[0x1a8 - 0x130]; void *FrontEndHeap; unsigned short FrontHeapLockCount;
  unsigned char FrontEndHeapType; unsigned char RequestedFrontEndHeapType; char _p2[0x2e0 - 0x1b4];
} HEAP;
typedef struct _HEAP_UCR_DESCRIPTOR { LIST_ENTRY ListEntry; LIST_ENTRY SegmentEntry; void *Address; unsigned long long Size; } HEAP_UCR_DESCRIPTOR;
typedef struct _HEAP_VIRTUAL_ALLOC_ENTRY { LIST_ENTRY Entry; HEAP_ENTRY ExtraStuff; unsigned long long CommitSize; unsigned long long ReserveSize; HEAP_ENTRY BusyBlock; } HEAP_VIRTUAL_ALLOC_ENTRY;
typedef struct _LFH_HEAP { void *Lock; LIST_ENTRY SubSegmentZones; void *Heap; } LFH_HEAP;
typedef struct _INTERLOCK_SEQ { unsigned short Depth; unsigned short Hint; } INTERLOCK_SEQ;
typedef struct _HEAP_SUBSEGMENT { void *LocalInfo; void *UserBlocks; void *DelayFreeList; void *_pad[1];
  INTERLOCK_SEQ AggregateExchg; unsigned short BlockSize; unsigned short Flags; unsigned short BlockCount; } HEAP_SUBSEGMENT;
typedef struct _RTL_BITMAP_EX { unsigned long long SizeOfBitMap; unsigned long long *Buffer; } RTL_BITMAP_EX;
typedef struct _HEAP_USERDATA_HEADER { void *SubSegment; void *Reserved; unsigned char SizeIndex; unsigned char GuardPagePresent;
  unsigned short PaddingBytes; unsigned int Signature; unsigned int EncodedOffsets; unsigned int _pad; RTL_BITMAP_EX BusyBitmap; } HEAP_USERDATA_HEADER;
_Static_assert(offsetof(HEAP, FrontEndHeap) == 0x1a8, "FrontEndHeap");
_Static_assert(offsetof(HEAP, FrontEndHeapType) == 0x1b2, "FrontEndHeapType");
_Static_assert(offsetof(HEAP, SegmentList) == 0x120, "SegmentList");
_Static_assert(offsetof(HEAP, Encoding) == 0x80, "Encoding");
_Static_assert(offsetof(HEAP, Interceptor) == 0x90, "Interceptor");
_Static_assert(offsetof(HEAP_SEGMENT, UCRSegmentList) == 0x60, "UCRSegmentList");
_Static_assert(offsetof(HEAP_SUBSEGMENT, BlockSize) == 0x24, "BlockSize");
_Static_assert(offsetof(HEAP_SUBSEGMENT, BlockCount) == 0x28, "BlockCount");
_Static_assert(offsetof(HEAP_USERDATA_HEADER, Signature) == 0x14, "Signature");
_Static_assert(offsetof(HEAP_USERDATA_HEADER, EncodedOffsets) == 0x18, "EncodedOffsets");
_Static_assert(offsetof(HEAP_USERDATA_HEADER, BusyBitmap) == 0x20, "BusyBitmap");
_Static_assert(sizeof(HEAP_VIRTUAL_ALLOC_ENTRY) == 0x40, "vae");
HEAP TheHeap; HEAP_UCR_DESCRIPTOR TheUcr; HEAP_VIRTUAL_ALLOC_ENTRY TheVae; LFH_HEAP TheLfh; HEAP_SUBSEGMENT TheSub; HEAP_USERDATA_HEADER TheUb;
unsigned long long RtlpLFHKey = 0x1234;
/* RtlpHpHeapGlobals: HeapKey, LfhKey (segment heaps). */
unsigned long long RtlpHpHeapGlobals[2] = {0x5678, 0x9abc};
long long entry(void) { return (long long)(RtlpLFHKey ^ RtlpHpHeapGlobals[0] ^ RtlpHpHeapGlobals[1]); }

use heapdiag::dump::Dump;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let d = Dump::open(std::path::Path::new(&a[1])).unwrap();
    let mem = d.memory();
    let at = u64::from_str_radix(a[2].trim_start_matches("0x"), 16).unwrap();
    let n: u64 = a[3].parse().unwrap();
    let bits: u32 = a.get(4).map(|s| s.parse().unwrap()).unwrap_or(32);
    for i in 0..n {
        let p = at + i * (bits as u64 / 8);
        println!("{:#x}: {:#x}", p, mem.read_ptr(p, bits).unwrap_or(0xdead));
    }
}

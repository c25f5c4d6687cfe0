//! Writes a small MaxMind DB (format 2.0) mapping IPv4 networks to country codes, so that
//! the GeoIP path is tested against a real database file read by the real reader.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    /// Offset in the data section.
    Data(usize),
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    assert!(size < 29);
    if kind <= 7 {
        out.push((kind << 5) | size as u8);
    } else {
        // Extended type: type 0 in the control byte, then type - 7.
        out.push(size as u8);
        out.push(kind - 7);
    }
}

fn string(text: &str, out: &mut Vec<u8>) {
    control(2, text.len(), out);
    out.extend_from_slice(text.as_bytes());
}

fn unsigned(kind: u8, value: u64, out: &mut Vec<u8>) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(kind, 8 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

/// `{"country": {"iso_code": code}}`
fn country(code: &str, out: &mut Vec<u8>) {
    control(7, 1, out);
    string("country", out);
    control(7, 1, out);
    string("iso_code", out);
    string(code, out);
}

/// Writes the database: each network (address, prefix length) → ISO country code.
pub fn write(path: &Path, networks: &[(Ipv4Addr, u8, &str)]) {
    let mut data = Vec::new();
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (address, prefix, code) in networks {
        let offset = data.len();
        country(code, &mut data);
        let bits = u32::from(*address);
        let mut node = 0;
        for depth in 0..*prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == *prefix {
                nodes[node][bit] = Record::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Record::Node(next) => next,
                    _ => {
                        nodes.push([Record::Empty; 2]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Record::Node(next);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut file = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match record {
                Record::Empty => count,
                Record::Node(next) => *next,
                Record::Data(offset) => count + 16 + offset,
            } as u32;
            file.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    file.extend_from_slice(&[0; 16]);
    file.extend_from_slice(&data);
    file.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    let mut metadata = Vec::new();
    control(7, 9, &mut metadata);
    string("node_count", &mut metadata);
    unsigned(6, count as u64, &mut metadata);
    string("record_size", &mut metadata);
    unsigned(5, 24, &mut metadata);
    string("ip_version", &mut metadata);
    unsigned(5, 4, &mut metadata);
    string("database_type", &mut metadata);
    string("Towerhook-Test-Country", &mut metadata);
    string("languages", &mut metadata);
    control(11, 0, &mut metadata);
    string("binary_format_major_version", &mut metadata);
    unsigned(5, 2, &mut metadata);
    string("binary_format_minor_version", &mut metadata);
    unsigned(5, 0, &mut metadata);
    string("build_epoch", &mut metadata);
    unsigned(9, 1_700_000_000, &mut metadata);
    string("description", &mut metadata);
    control(7, 0, &mut metadata);
    file.extend_from_slice(&metadata);
    std::fs::write(path, file).unwrap();
}

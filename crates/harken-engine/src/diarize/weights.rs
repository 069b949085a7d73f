//! Reads the tensors of a PyTorch state dict saved with `torch.save`, without Python.
//!
//! Resemblyzer's `pretrained.pt` uses the legacy (pre-1.6, non-zip) serialisation: five pickles
//! back to back — magic number, protocol version, system info, the object, the list of storage
//! keys — followed by every storage as a little-endian `u64` element count and its raw data, in
//! the order of that key list. The object pickle (protocol 2) is run by a small pickle machine
//! that knows just the opcodes and globals `torch.save` emits for a dict of float tensors
//! (optimizer state included, which is parsed and ignored). Tensors are rebuilt from
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`; several may share one
//! storage (cuDNN keeps all LSTM weights in one flat buffer).
//!
//! The zip format (PyTorch ≥ 1.6, e.g. CAM++'s `campplus_cn_en_common.pt`) is read by
//! [`load_zip_tensors`]: the same object pickle as `<archive>/data.pkl`, with each storage stored
//! as its own entry `<archive>/data/<key>`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context};

/// `torch.save`'s legacy magic number `0x1950a86a20f9469cfc6c`, the first pickle of the file,
/// as the little-endian bytes of its LONG1 opcode.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A float32 tensor, contiguous, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<f32>,
}

/// All float tensors found anywhere in the saved object, by their dotted key
/// (`model_state.lstm.weight_ih_l0`).
pub(crate) fn load_tensors(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("parsing the PyTorch file {}", path.display()))
}

/// All float32 tensors of a zip-format `torch.save` file, by dotted key (`head.conv1.weight`).
/// Tensors of other dtypes are left out: a BatchNorm's `num_batches_tracked` is an `int64`
/// counter that inference never reads.
pub(crate) fn load_zip_tensors(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    parse_zip(file).with_context(|| format!("parsing the PyTorch zip file {}", path.display()))
}

fn parse_zip(file: std::fs::File) -> anyhow::Result<HashMap<String, Tensor>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).context("not a zip archive")?;
    let pickle_name = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no data.pkl in the archive"))?;
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
    let mut read = |name: &str| -> anyhow::Result<Vec<u8>> {
        let mut entry = archive.by_name(name).with_context(|| format!("no entry {name}"))?;
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut buf).with_context(|| format!("reading entry {name}"))?;
        Ok(buf)
    };
    let pickle = read(&pickle_name)?;
    let mut pos = 0;
    let object = Machine::run(&pickle, &mut pos)?;
    let mut keys = Vec::new();
    storage_keys(&object, &mut keys);
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in keys {
        if let std::collections::hash_map::Entry::Vacant(slot) = storages.entry(key) {
            let data = read(&format!("{prefix}data/{}", slot.key()))?;
            slot.insert(data);
        }
    }
    let storages: HashMap<String, &[u8]> = storages.iter().map(|(k, v)| (k.clone(), v.as_slice())).collect();
    let mut out = HashMap::new();
    collect(&object, String::new(), &storages, &mut out)?;
    Ok(out)
}

/// The storage keys of every float tensor in `v`.
fn storage_keys(v: &Value, keys: &mut Vec<String>) {
    match v {
        Value::Dict(items) => items.iter().for_each(|(_, v)| storage_keys(v, keys)),
        Value::Tensor { storage, .. } => keys.push(storage.clone()),
        _ => {}
    }
}

fn parse(bytes: &[u8]) -> anyhow::Result<HashMap<String, Tensor>> {
    ensure!(!bytes.starts_with(b"PK"), "zip-format torch.save files are not supported, only the legacy format");
    let mut pos = 0;
    let magic = Machine::run(bytes, &mut pos)?;
    ensure!(matches!(&magic, Value::BigInt(m) if m[..] == MAGIC), "not a legacy torch.save file (bad magic number)");
    let _protocol = Machine::run(bytes, &mut pos)?;
    let _sys_info = Machine::run(bytes, &mut pos)?;
    let object = Machine::run(bytes, &mut pos)?;
    let keys = match Machine::run(bytes, &mut pos)? {
        Value::List(keys) => keys,
        other => bail!("expected the list of storage keys, found {other:?}"),
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else { bail!("storage key is not a string") };
        let count = u64::from_le_bytes(take(bytes, &mut pos, 8)?.try_into().expect("8 bytes")) as usize;
        storages.insert(key, take(bytes, &mut pos, count * 4)?);
    }
    let mut out = HashMap::new();
    collect(&object, String::new(), &storages, &mut out)?;
    Ok(out)
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> anyhow::Result<&'a [u8]> {
    let end =
        pos.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| anyhow!("file truncated at byte {pos}"))?;
    let s = &bytes[*pos..end];
    *pos = end;
    Ok(s)
}

fn collect(
    v: &Value,
    prefix: String,
    storages: &HashMap<String, &[u8]>,
    out: &mut HashMap<String, Tensor>,
) -> anyhow::Result<()> {
    match v {
        Value::Dict(items) => {
            for (k, v) in items {
                let name = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let key = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
                collect(v, key, storages, out)?;
            }
        }
        Value::Tensor { storage, offset, size, stride } => {
            let raw = storages.get(storage).ok_or_else(|| anyhow!("{prefix}: storage {storage} missing"))?;
            out.insert(prefix.clone(), rebuild(raw, *offset, size, stride).with_context(|| prefix.clone())?);
        }
        _ => {}
    }
    Ok(())
}

/// Copies a (possibly strided) view out of a storage into a contiguous tensor.
fn rebuild(raw: &[u8], offset: usize, size: &[usize], stride: &[usize]) -> anyhow::Result<Tensor> {
    ensure!(size.len() == stride.len(), "size and stride differ in rank");
    let numel: usize = size.iter().product();
    let elements = raw.len() / 4;
    let last = offset + size.iter().zip(stride).map(|(n, s)| n.saturating_sub(1) * s).sum::<usize>();
    ensure!(numel == 0 || last < elements, "tensor reaches past its storage ({last} >= {elements})");
    let at = |i: usize| f32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; size.len()];
    for _ in 0..numel {
        data.push(at(offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>()));
        for d in (0..size.len()).rev() {
            index[d] += 1;
            if index[d] < size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Tensor { shape: size.to_vec(), data })
}

/// A pickle value. Booleans and floats must be parsed to keep the stack right, but no state
/// dict we read uses their payloads beyond `Debug` in error messages.
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for `i64`, as its little-endian bytes (only the magic number).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage(String),
    Tensor {
        storage: String,
        offset: usize,
        size: Vec<usize>,
        stride: Vec<usize>,
    },
    /// Anything else a REDUCE built; kept as a placeholder.
    Opaque,
}

impl Value {
    fn usize(&self) -> anyhow::Result<usize> {
        match self {
            Value::Int(i) if *i >= 0 => Ok(*i as usize),
            other => bail!("expected a non-negative integer, found {other:?}"),
        }
    }

    fn usizes(&self) -> anyhow::Result<Vec<usize>> {
        match self {
            Value::Tuple(items) => items.iter().map(Value::usize).collect(),
            other => bail!("expected a tuple of integers, found {other:?}"),
        }
    }
}

/// The pickle machine: a stack, a mark stack and a memo.
#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine {
    /// Runs one pickle starting at `*pos`, leaving `*pos` after its STOP.
    fn run(bytes: &[u8], pos: &mut usize) -> anyhow::Result<Value> {
        let mut m = Machine::default();
        loop {
            let at = *pos;
            let op = take(bytes, pos, 1)?[0];
            if let Some(v) = m.step(op, bytes, pos).with_context(|| format!("pickle opcode 0x{op:02x} at byte {at}"))? {
                return Ok(v);
            }
        }
    }

    fn pop(&mut self) -> anyhow::Result<Value> {
        self.stack.pop().ok_or_else(|| anyhow!("stack underflow"))
    }

    fn pop_mark(&mut self) -> anyhow::Result<Vec<Value>> {
        let mark = self.marks.pop().ok_or_else(|| anyhow!("no mark"))?;
        ensure!(mark <= self.stack.len(), "mark past the stack");
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> anyhow::Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| anyhow!("stack underflow"))
    }

    fn step(&mut self, op: u8, b: &[u8], pos: &mut usize) -> anyhow::Result<Option<Value>> {
        let u8_at = |pos: &mut usize| take(b, pos, 1).map(|s| s[0]);
        let u32_at = |pos: &mut usize| take(b, pos, 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
        match op {
            0x80 => {
                u8_at(pos)?; // PROTO
            }
            b'.' => return self.pop().map(Some),
            b'(' => self.marks.push(self.stack.len()),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => self.stack.push(Value::Int(i32::from_le_bytes(take(b, pos, 4)?.try_into().expect("4")) as i64)),
            b'K' => self.stack.push(Value::Int(u8_at(pos)? as i64)),
            b'M' => self.stack.push(Value::Int(u16::from_le_bytes(take(b, pos, 2)?.try_into().expect("2")) as i64)),
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = u8_at(pos)? as usize;
                let raw = take(b, pos, n)?;
                self.stack.push(if n <= 8 {
                    let mut buf = if raw.last().is_some_and(|&x| x & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(raw);
                    Value::Int(i64::from_le_bytes(buf))
                } else {
                    Value::BigInt(raw.to_vec())
                });
            }
            b'G' => self.stack.push(Value::Float(f64::from_be_bytes(take(b, pos, 8)?.try_into().expect("8")))),
            b'X' => {
                let n = u32_at(pos)? as usize;
                let s = std::str::from_utf8(take(b, pos, n)?).context("string is not UTF-8")?;
                self.stack.push(Value::Str(s.to_owned()));
            }
            b'c' => {
                let mut line = || -> anyhow::Result<String> {
                    let rest = &b[*pos..];
                    let n = rest.iter().position(|&c| c == b'\n').ok_or_else(|| anyhow!("unterminated GLOBAL"))?;
                    *pos += n + 1;
                    Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
                };
                let (module, name) = (line()?, line()?);
                self.stack.push(Value::Global(module, name));
            }
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                ensure!(self.stack.len() >= n, "stack underflow");
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items));
            }
            b']' => self.stack.push(Value::List(Vec::new())),
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b'a' => {
                let v = self.pop()?;
                match self.top()? {
                    Value::List(items) => items.push(v),
                    other => bail!("APPEND to {other:?}"),
                }
            }
            b'e' => {
                let vs = self.pop_mark()?;
                match self.top()? {
                    Value::List(items) => items.extend(vs),
                    other => bail!("APPENDS to {other:?}"),
                }
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                match self.top()? {
                    Value::Dict(items) => items.push((k, v)),
                    other => bail!("SETITEM on {other:?}"),
                }
            }
            b'u' => {
                let kvs = self.pop_mark()?;
                ensure!(kvs.len() % 2 == 0, "SETITEMS with an odd number of values");
                let Value::Dict(items) = self.top()? else { bail!("SETITEMS on a non-dict") };
                let mut it = kvs.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    items.push((k, v));
                }
            }
            b'q' => {
                let i = u8_at(pos)? as u32;
                let v = self.top()?.clone();
                self.memo.insert(i, v);
            }
            b'r' => {
                let i = u32_at(pos)?;
                let v = self.top()?.clone();
                self.memo.insert(i, v);
            }
            b'h' | b'j' => {
                let i = if op == b'h' { u8_at(pos)? as u32 } else { u32_at(pos)? };
                let v = self.memo.get(&i).cloned().ok_or_else(|| anyhow!("memo {i} unset"))?;
                self.stack.push(v);
            }
            b'Q' => {
                // BINPERSID: ('storage', storage_type, key, location, numel[, view_metadata])
                let pid = self.pop()?;
                let key = match &pid {
                    Value::Tuple(items) if items.len() >= 3 => match &items[2] {
                        Value::Str(k) => k.clone(),
                        other => bail!("storage key {other:?}"),
                    },
                    other => bail!("persistent id {other:?}"),
                };
                if let Value::Tuple(items) = &pid {
                    if let (Some(Value::Global(_, ty)), Some(view)) = (items.get(1), items.get(5)) {
                        ensure!(ty == "FloatStorage", "only float32 tensors are supported, found {ty}");
                        ensure!(matches!(view, Value::None), "storage views are not supported");
                    }
                    // Zip format: ('storage', type, key, location, numel). Each storage is its own
                    // archive entry, so one of another dtype can simply be left out.
                    if let (5, Some(Value::Global(_, ty))) = (items.len(), items.get(1)) {
                        if ty != "FloatStorage" {
                            self.stack.push(Value::Opaque);
                            return Ok(None);
                        }
                    }
                }
                self.stack.push(Value::Storage(key));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = match (&callable, args) {
                    (Value::Global(m, n), _) if m == "collections" && n == "OrderedDict" => Value::Dict(Vec::new()),
                    (Value::Global(m, n), Value::Tuple(a)) if m == "torch._utils" && n == "_rebuild_tensor_v2" => {
                        ensure!(a.len() >= 4, "_rebuild_tensor_v2 with {} arguments", a.len());
                        if matches!(a[0], Value::Opaque) {
                            // A tensor on a storage skipped above (not float32).
                            self.stack.push(Value::Opaque);
                            return Ok(None);
                        }
                        let Value::Storage(storage) = &a[0] else { bail!("tensor without a storage") };
                        Value::Tensor {
                            storage: storage.clone(),
                            offset: a[1].usize()?,
                            size: a[2].usizes()?,
                            stride: a[3].usizes()?,
                        }
                    }
                    _ => Value::Opaque,
                };
                self.stack.push(v);
            }
            0x81 => {
                // NEWOBJ (`cls.__new__(cls, *args)`): objects of other classes in a checkpoint
                // (a Lightning checkpoint's hyper-parameters) are not weights.
                self.pop()?;
                self.pop()?;
                self.stack.push(Value::Opaque);
            }
            b'b' => {
                self.pop()?; // BUILD: state ignored (OrderedDict metadata, objects' attributes).
            }
            _ => bail!("unsupported pickle opcode"),
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_are_copied_in_row_major_order() {
        let raw: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
        // The transpose of a 3x4 matrix, starting at element 0.
        let t = rebuild(&raw, 0, &[4, 3], &[1, 4]).unwrap();
        assert_eq!(t.data, vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]);
        assert!(rebuild(&raw, 10, &[2, 2], &[2, 1]).is_err());
    }

    #[test]
    fn a_small_pickle_runs() {
        // pickle.dumps({'a': (1, 2.5, 'x')}, protocol=2)
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x02\x87q\x03s.";
        let mut pos = 0;
        let v = Machine::run(p, &mut pos).unwrap();
        assert_eq!(pos, p.len());
        let Value::Dict(items) = v else { panic!("not a dict") };
        assert!(matches!(&items[0], (Value::Str(k), Value::Tuple(t)) if k == "a" && t.len() == 3));
    }

    /// A zip-format file as `torch.save` writes it: the pickle (made by Python's pickler with
    /// torch's globals and persistent ids) and one entry per storage, one of them `int64`.
    #[test]
    fn zip_format_files_are_read_and_int64_tensors_skipped() {
        use std::io::Write;
        // OrderedDict(conv.weight: float32 2x3 at offset 0 of storage "0", bn.num_batches_tracked:
        // int64 scalar in storage "1", conv.bias: float32 [2] at offset 4 of storage "0").
        let pickle = PICKLE;
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.as_file().try_clone().unwrap());
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("model/data.pkl", stored).unwrap();
        zip.write_all(pickle).unwrap();
        zip.start_file("model/data/0", stored).unwrap();
        for v in 0..6 {
            zip.write_all(&(v as f32).to_le_bytes()).unwrap();
        }
        zip.start_file("model/data/1", stored).unwrap();
        zip.write_all(&7i64.to_le_bytes()).unwrap();
        zip.start_file("model/version", stored).unwrap();
        zip.write_all(b"3\n").unwrap();
        zip.finish().unwrap();

        let t = load_zip_tensors(file.path()).unwrap();
        assert_eq!(t.len(), 2, "{:?}", t.keys().collect::<Vec<_>>());
        assert_eq!(t["conv.weight"], Tensor { shape: vec![2, 3], data: vec![0., 1., 2., 3., 4., 5.] });
        assert_eq!(t["conv.bias"], Tensor { shape: vec![2], data: vec![4., 5.] });
        assert!(load_tensors(file.path()).is_err(), "the legacy reader must refuse zip files");
    }

    const PICKLE: &[u8] = b"\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65\x64\
          \x44\x69\x63\x74\x0a\x71\x00\x29\x52\x71\x01\x28\x58\x0b\x00\x00\x00\x63\x6f\x6e\x76\x2e\
          \x77\x65\x69\x67\x68\x74\x71\x02\x63\x74\x6f\x72\x63\x68\x2e\x5f\x75\x74\x69\x6c\x73\x0a\
          \x5f\x72\x65\x62\x75\x69\x6c\x64\x5f\x74\x65\x6e\x73\x6f\x72\x5f\x76\x32\x0a\x71\x03\x28\
          \x28\x58\x07\x00\x00\x00\x73\x74\x6f\x72\x61\x67\x65\x71\x04\x63\x74\x6f\x72\x63\x68\x0a\
          \x46\x6c\x6f\x61\x74\x53\x74\x6f\x72\x61\x67\x65\x0a\x71\x05\x58\x01\x00\x00\x00\x30\x71\
          \x06\x58\x03\x00\x00\x00\x63\x70\x75\x71\x07\x4b\x06\x74\x71\x08\x51\x4b\x00\x4b\x02\x4b\
          \x03\x86\x71\x09\x4b\x03\x4b\x01\x86\x71\x0a\x89\x68\x00\x29\x52\x71\x0b\x74\x71\x0c\x52\
          \x71\x0d\x58\x16\x00\x00\x00\x62\x6e\x2e\x6e\x75\x6d\x5f\x62\x61\x74\x63\x68\x65\x73\x5f\
          \x74\x72\x61\x63\x6b\x65\x64\x71\x0e\x68\x03\x28\x28\x68\x04\x63\x74\x6f\x72\x63\x68\x0a\
          \x4c\x6f\x6e\x67\x53\x74\x6f\x72\x61\x67\x65\x0a\x71\x0f\x58\x01\x00\x00\x00\x31\x71\x10\
          \x68\x07\x4b\x01\x74\x71\x11\x51\x4b\x00\x29\x29\x89\x68\x00\x29\x52\x71\x12\x74\x71\x13\
          \x52\x71\x14\x58\x09\x00\x00\x00\x63\x6f\x6e\x76\x2e\x62\x69\x61\x73\x71\x15\x68\x03\x28\
          \x28\x68\x04\x68\x05\x68\x06\x68\x07\x4b\x06\x74\x71\x16\x51\x4b\x04\x4b\x02\x85\x71\x17\
          \x4b\x01\x85\x71\x18\x89\x68\x00\x29\x52\x71\x19\x74\x71\x1a\x52\x71\x1b\x75\x2e";
}

//! A JPEG decoder that reproduces libjpeg-turbo's default decompression
//! bit for bit, so that JPEG pixels equal Pillow's (Pillow decodes with
//! libjpeg-turbo using its defaults: `JDCT_ISLOW`, fancy upsampling, no
//! merged upsampling, full size).
//!
//! Stages and the libjpeg-turbo sources they follow:
//! * entropy decoding, baseline/extended Huffman and progressive
//!   (`jdhuff.c`, `jdphuff.c`), restart markers; coefficients kept whole;
//! * quantisation tables latched at each component's first scan
//!   (`jdinput.c`);
//! * `jpeg_idct_islow` (`jidctint.c`): Loeffler–Ligtenberg–Moschytz integer
//!   IDCT, `CONST_BITS = 13`, `PASS1_BITS = 2`, outputs through the
//!   post-IDCT range-limit table (`x & 1023` lookup, `jdmaster.c`);
//! * upsampling (`jdsample.c`): full size, `h2v1`/`h2v2` "fancy" triangle
//!   filters (box replication when the downsampled width is ≤ 2), `h1v2`
//!   fancy, integral box replication otherwise; the rows above the first and
//!   below the last real row repeat it (`jdmainct.c`);
//! * colour conversion (`jdcolor.c`): `ycc_rgb_convert` with 16-bit
//!   fixed-point tables, `ycck_cmyk_convert`; colour space from the JFIF /
//!   Adobe markers and component ids (`jdapimin.c`).
//!
//! Arithmetic coding, lossless, hierarchical and 12-bit JPEGs are refused
//! (Pillow's libjpeg-turbo decodes some of them, gen-metrics does not).
//! A progressive file whose scans leave low-frequency coefficients
//! incomplete is refused too: libjpeg-turbo would apply its block smoothing.

use super::Failure;

/// The decoded samples, in the colour space libjpeg-turbo outputs for
/// Pillow: gray (`L`), RGB, or CMYK (before Pillow's inversion).
pub(crate) enum JpegPixels {
    Gray(Vec<u8>),
    Rgb(Vec<u8>),
    Cmyk(Vec<u8>),
}

pub(crate) struct JpegImage {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) pixels: JpegPixels,
}

const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// `jpeg_natural_order` extended as libjpeg does, so a corrupt run past
/// coefficient 63 lands on 63 instead of out of bounds.
#[inline]
fn natural(k: usize) -> usize {
    if k < 64 { ZIGZAG[k] } else { 63 }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::Malformed(msg.into())
}

fn unsupported(msg: impl Into<String>) -> Failure {
    Failure::Unsupported(msg.into())
}

// ---------------------------------------------------------------------------
// Buffers reused from one image to the next
// ---------------------------------------------------------------------------

/// The buffers one thread's decodes reuse: coefficient arrays, sample
/// planes and the interleaved output (given back by the caller through
/// [`recycle_bytes`]). A photo's buffers are a few megabytes; allocated
/// fresh for each image they were fresh pages from the kernel, zeroed on
/// first touch (perf, 640×427 JPEG with the system allocator: page faults
/// and `brk` ≈ 27 % of decode + clean resize). At most [`POOL_KEEP_BYTES`]
/// and [`POOL_KEEP_BUFFERS`] per kind are kept; the rest are freed.
#[derive(Default)]
struct Pool {
    bytes: Vec<Vec<u8>>,
    blocks: Vec<Vec<[i16; 64]>>,
}

/// Capacity kept per thread and kind of buffer.
const POOL_KEEP_BYTES: usize = 32 << 20;
/// Buffers kept per thread and kind (a 3-component image uses 7 byte
/// buffers at once).
const POOL_KEEP_BUFFERS: usize = 8;

thread_local! {
    static POOL: std::cell::RefCell<Pool> = std::cell::RefCell::new(Pool::default());
}

/// The buffer of `pool` that best fits `len` elements: the smallest holding
/// `len`, else the largest; `None` for an empty pool.
fn best_fit<T>(pool: &mut Vec<Vec<T>>, len: usize) -> Option<Vec<T>> {
    let fits = pool
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= len)
        .min_by_key(|(_, v)| v.capacity())
        .map(|(i, _)| i);
    let i = fits.or_else(|| {
        pool.iter()
            .enumerate()
            .max_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
    })?;
    Some(pool.swap_remove(i))
}

/// Keeps `v` in `pool` within the limits above, or frees it.
fn keep<T>(pool: &mut Vec<Vec<T>>, v: Vec<T>) {
    let held: usize = pool.iter().map(|b| b.capacity() * size_of::<T>()).sum();
    if pool.len() < POOL_KEEP_BUFFERS && held + v.capacity() * size_of::<T>() <= POOL_KEEP_BYTES {
        pool.push(v);
    }
}

/// Which of [`Pool`]'s lists a buffer kind lives in.
type Kind<T> = fn(&mut Pool) -> &mut Vec<Vec<T>>;

/// A buffer of `kind` from this thread's pool ([`best_fit`] for `len`
/// elements), or an empty one.
fn take<T>(kind: Kind<T>, len: usize) -> Vec<T> {
    POOL.with(|p| {
        p.try_borrow_mut()
            .ok()
            .and_then(|mut p| best_fit(kind(&mut p), len))
    })
    .unwrap_or_default()
}

/// Gives `v` back to this thread's pool of `kind` (kept within the limits).
fn give<T>(kind: Kind<T>, v: Vec<T>) {
    POOL.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            keep(kind(&mut p), v);
        }
    });
}

/// A byte buffer of length `len` whose contents are unspecified (zeros or
/// an earlier image's samples): only for buffers the caller overwrites
/// entirely.
pub(crate) fn take_bytes(len: usize) -> Vec<u8> {
    let mut v = take(|p| &mut p.bytes, len);
    // Only growth is filled; what is kept is overwritten by the caller.
    v.resize(len, 0);
    v
}

/// `n` zeroed coefficient blocks.
fn take_blocks(n: usize) -> Vec<[i16; 64]> {
    let mut v = take(|p| &mut p.blocks, n);
    v.clear();
    v.resize(n, [0; 64]);
    v
}

/// Gives a byte buffer back to this thread's pool (e.g. the pixels of an
/// image once they are preprocessed).
pub(crate) fn recycle_bytes(v: Vec<u8>) {
    give(|p| &mut p.bytes, v);
}

fn recycle_blocks(v: Vec<[i16; 64]>) {
    give(|p| &mut p.blocks, v);
}

/// How many scans, on average, may pass over each block of a frame: the
/// work budget that bounds decoding time.
///
/// Every scan walks all blocks of its components whether or not it carries
/// data: end-of-band runs code 32,767 blocks in a few bits, and a
/// refinement scan still inspects each block of the run for correction
/// bits. Without a bound, decoding time grew with the number of scans: a
/// 9.4 kB file repeating one such scan 60 times over a 2^27-pixel frame
/// took 9.8 s, time growing linearly with the file (`docs/fuzzing.md`). Each scan is charged its block visits before it is
/// decoded; a frame may spend `MAX_SCANS_PER_BLOCK x` its blocks. Encoders
/// pass over a component a handful of times (libjpeg's standard
/// progression: 6 scans over luma, 4 over each chroma component), so only
/// files repeating scans are refused. libjpeg-turbo leaves such a guard to
/// its callers (`TJPARAM_SCANLIMIT`); Pillow sets none and would decode them.
pub(crate) const MAX_SCANS_PER_BLOCK: u64 = 32;

#[derive(Clone)]
struct Huffman {
    /// Fast lookup on 9 bits: (code length, symbol); length 0 = slow path.
    fast: Vec<(u8, u8)>,
    /// For an AC table, the whole coefficient on the same 9 bits when the
    /// code and its magnitude bits fit in them: (bits used, run, value);
    /// 0 bits = not in the table (stb_image's `fast_ac`).
    fast_ac: Vec<(u8, u8, i16)>,
    maxcode: [i32; 18],
    valoffset: [i32; 18],
    values: Vec<u8>,
}

const FAST_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, Failure> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total > 256 || total > values.len() {
            return Err(bad("bad Huffman table"));
        }
        let mut fast = vec![(0u8, 0u8); 1 << FAST_BITS];
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 18];
        let mut code: i32 = 0;
        let mut k = 0usize;
        for l in 1..=16usize {
            let n = counts[l - 1] as usize;
            valoffset[l] = k as i32 - code;
            for _ in 0..n {
                if l as u32 <= FAST_BITS {
                    let shift = FAST_BITS - l as u32;
                    let base = (code as usize) << shift;
                    for e in fast.iter_mut().skip(base).take(1 << shift) {
                        *e = (l as u8, values[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[l] = code - 1;
            }
            if code > (1 << l) {
                return Err(bad("bad Huffman table"));
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX; // sentinel
        let mut fast_ac = vec![(0u8, 0u8, 0i16); 1 << FAST_BITS];
        for (p, (e, &(len, sym))) in fast_ac.iter_mut().zip(&fast).enumerate() {
            let (run, size) = (sym >> 4, u32::from(sym & 15));
            let used = u32::from(len) + size;
            if len > 0 && size > 0 && used <= FAST_BITS {
                let bits = ((p >> (FAST_BITS - used)) & ((1 << size) - 1)) as i32;
                *e = (used as u8, run, extend(bits, size) as i16);
            }
        }
        Ok(Huffman {
            fast,
            fast_ac,
            maxcode,
            valoffset,
            values,
        })
    }
}

/// `HUFF_EXTEND(v, s)`: the `s` magnitude bits `v` as a signed value.
#[inline]
fn extend(v: i32, s: u32) -> i32 {
    if v < (1 << (s - 1)) {
        v - (1 << s) + 1
    } else {
        v
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
    /// A marker was reached: further bits are zeros (libjpeg's behaviour,
    /// with a "corrupt data" warning that Pillow ignores).
    marker: Option<u8>,
    /// Bits loaded from the data (or zero-filled at a marker).
    real_bits: u64,
    /// Bits consumed.
    consumed: u64,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            nbits: 0,
            marker: None,
            real_bits: 0,
            consumed: 0,
        }
    }

    /// Loads bytes until more than 56 bits are buffered: eight bytes at a
    /// time when none of them is `0xFF` (the common case: no stuffing, no
    /// marker), else byte by byte.
    #[inline]
    fn fill(&mut self) {
        if self.marker.is_none()
            && let Some(next) = self.data.get(self.pos..self.pos + 8)
        {
            let mut word = [0u8; 8];
            word.copy_from_slice(next);
            let word = u64::from_be_bytes(word);
            // A zero byte of !word is a 0xFF byte of word (exact test).
            let inv = !word;
            let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                // As many whole bytes as the loop below would add.
                let bits = 8 * ((64 - self.nbits) / 8);
                if bits > 0 {
                    let chunk = if bits == 64 {
                        word
                    } else {
                        word >> (64 - bits)
                    };
                    self.acc |= chunk << (64 - bits - self.nbits);
                    self.nbits += bits;
                    self.pos += (bits / 8) as usize;
                    self.real_bits += u64::from(bits);
                }
                return;
            }
        }
        self.fill_bytes();
    }

    #[cold]
    fn fill_bytes(&mut self) {
        while self.nbits <= 56 {
            let byte = if self.marker.is_some() {
                self.real_bits += 8;
                0
            } else if self.pos >= self.data.len() {
                0
            } else {
                let b = self.data[self.pos];
                if b == 0xFF {
                    // Skip fill bytes, then look at what follows.
                    let mut q = self.pos + 1;
                    while q < self.data.len() && self.data[q] == 0xFF {
                        q += 1;
                    }
                    if q >= self.data.len() {
                        self.pos = self.data.len();
                        0
                    } else if self.data[q] == 0x00 {
                        self.pos = q + 1;
                        self.real_bits += 8;
                        0xFF
                    } else {
                        self.marker = Some(self.data[q]);
                        self.pos = q - 1; // at the marker's 0xFF
                        self.real_bits += 8;
                        0
                    }
                } else {
                    self.pos += 1;
                    self.real_bits += 8;
                    b
                }
            };
            self.acc |= u64::from(byte) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.nbits -= n;
        self.consumed += u64::from(n);
    }

    /// True when bits past the end of the data were used (a truncated file).
    fn used_past_end(&self) -> bool {
        self.consumed > self.real_bits
    }

    #[inline]
    fn bits(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        if self.nbits < n {
            self.fill();
        }
        let v = (self.acc >> (64 - n)) as i32;
        self.consume(n);
        v
    }

    #[inline]
    fn bit(&mut self) -> i32 {
        self.bits(1)
    }

    #[inline]
    fn decode(&mut self, h: &Huffman) -> Result<u8, Failure> {
        if self.nbits < 16 {
            self.fill();
        }
        let peek = (self.acc >> (64 - FAST_BITS)) as usize;
        let (len, sym) = h.fast[peek];
        if len > 0 {
            self.consume(u32::from(len));
            return Ok(sym);
        }
        self.decode_long(h)
    }

    /// [`decode`](Self::decode) for codes longer than `FAST_BITS`.
    #[cold]
    fn decode_long(&mut self, h: &Huffman) -> Result<u8, Failure> {
        let mut l = FAST_BITS as usize + 1;
        loop {
            let code = (self.acc >> (64 - l)) as i32;
            if l > 16 {
                // libjpeg: "Corrupt JPEG data: bad Huffman code", returns 0.
                self.consume(16);
                return Ok(0);
            }
            if code <= h.maxcode[l] {
                self.consume(l as u32);
                let idx = (code + h.valoffset[l]) as usize;
                return h
                    .values
                    .get(idx)
                    .copied()
                    .ok_or_else(|| bad("bad Huffman code"));
            }
            l += 1;
        }
    }

    /// `HUFF_EXTEND(get_bits(s), s)`.
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        extend(self.bits(s), s)
    }

    /// At a restart: drop buffered bits and consume the RSTn marker, if it
    /// is the next marker (libjpeg resynchronises on anything else; here the
    /// following data then decodes as zeros up to the marker).
    fn restart(&mut self) {
        // Buffered bits are dropped: count them as consumed padding.
        self.consumed += u64::from(self.nbits);
        self.real_bits = self.real_bits.max(self.consumed);
        self.acc = 0;
        self.nbits = 0;
        let mut p = self.pos;
        if self.marker.is_none() {
            // Find the next marker.
            while p + 1 < self.data.len()
                && !(self.data[p] == 0xFF && self.data[p + 1] != 0x00 && self.data[p + 1] != 0xFF)
            {
                p += 1;
            }
        }
        let mut q = p;
        while q < self.data.len() && self.data[q] == 0xFF {
            q += 1;
        }
        if q < self.data.len() && (0xD0..=0xD7).contains(&self.data[q]) {
            self.pos = q + 1;
            self.marker = None;
        } else {
            self.pos = p;
        }
    }
}

#[derive(Clone)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per row / rows of blocks allocated (whole MCUs).
    bw: usize,
    bh: usize,
    coefs: Vec<[i16; 64]>,
    qtable: Option<[u16; 64]>,
    /// Per coefficient: the successive-approximation bit still missing
    /// (-1 never seen), as libjpeg's `coef_bits`.
    coef_bits: [i32; 64],
}

struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    mcus_x: usize,
    mcus_y: usize,
}

/// Decodes a JPEG file as libjpeg-turbo does for Pillow.
pub(crate) fn decode(data: &[u8]) -> Result<JpegImage, Failure> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(bad("missing SOI marker"));
    }
    let mut pos = 2;
    let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut restart_interval = 0usize;
    let mut frame: Option<Frame> = None;
    let mut saw_jfif = false;
    let mut adobe: Option<u8> = None;
    // Block visits left before the frame exceeds its work budget
    // (MAX_SCANS_PER_BLOCK), set when the frame header is read.
    let mut budget: u64 = 0;
    loop {
        // Next marker (skipping garbage and fill bytes, as libjpeg does with a warning).
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        if pos >= data.len() {
            // Pillow refuses a JPEG without its EOI marker ("image file is
            // truncated") unless LOAD_TRUNCATED_IMAGES is set: so do we.
            return Err(bad("file is truncated (no EOI marker)"));
        }
        let marker = data[pos];
        pos += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => break,
            _ => {}
        }
        if pos + 2 > data.len() {
            return Err(bad("truncated marker segment"));
        }
        let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
        if len < 2 || pos + len > data.len() {
            return Err(bad(format!("truncated marker segment 0xFF{marker:02X}")));
        }
        let seg = &data[pos + 2..pos + len];
        let after = pos + len;
        match marker {
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(bad("more than one frame"));
                }
                let f = parse_sof(seg, marker == 0xC2, data.len())?;
                let blocks: u64 = f.comps.iter().map(|c| c.coefs.len() as u64).sum();
                budget = blocks.saturating_mul(MAX_SCANS_PER_BLOCK);
                frame = Some(f);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(unsupported(format!(
                    "JPEG process SOF{} (lossless, hierarchical or arithmetic coding)",
                    marker - 0xC0
                )));
            }
            0xC4 => parse_dht(seg, &mut dc_tables, &mut ac_tables)?,
            0xDB => parse_dqt(seg, &mut qt)?,
            0xDD => {
                if seg.len() < 2 {
                    return Err(bad("bad DRI"));
                }
                restart_interval = usize::from(u16::from_be_bytes([seg[0], seg[1]]));
            }
            0xE0 if seg.starts_with(b"JFIF\0") => saw_jfif = true,
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => adobe = Some(seg[11]),
            0xDA => {
                let f = frame
                    .as_mut()
                    .ok_or_else(|| bad("scan before frame header"))?;
                let end = decode_scan(
                    seg,
                    data,
                    after,
                    f,
                    &qt,
                    &dc_tables,
                    &ac_tables,
                    restart_interval,
                    &mut budget,
                )?;
                pos = end;
                continue;
            }
            _ => {}
        }
        pos = after;
    }
    let f = frame.ok_or_else(|| bad("no frame header"))?;
    if f.comps.iter().all(|c| c.qtable.is_none()) {
        return Err(bad("no image data"));
    }
    if f.progressive {
        for c in &f.comps {
            // jdcoefct.c smoothing_ok(): smoothing would run if DC or any of
            // the first AC coefficients is not known to full precision.
            if c.coef_bits[..10].iter().any(|&b| b != 0) {
                return Err(unsupported(
                    "progressive JPEG with incomplete scans (libjpeg-turbo would smooth blocks)",
                ));
            }
        }
    }
    render(f, saw_jfif, adobe)
}

fn parse_sof(seg: &[u8], progressive: bool, file_len: usize) -> Result<Frame, Failure> {
    if seg.len() < 6 {
        return Err(bad("bad SOF"));
    }
    if seg[0] != 8 {
        return Err(unsupported(format!("{}-bit JPEG", seg[0])));
    }
    let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
    let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
    let n = usize::from(seg[5]);
    if width == 0 || height == 0 {
        return Err(unsupported("JPEG with zero width or height (DNL) "));
    }
    if !matches!(n, 1 | 3 | 4) || seg.len() < 6 + 3 * n {
        return Err(unsupported(format!("JPEG with {n} components")));
    }
    // The declared size against the pixel limit and, for a sequential frame,
    // against the file: every coded block takes at least 2 bits (a DC and an
    // end-of-block code) and at least ceil(w / 8) * ceil(h / 8) blocks are
    // coded (decode module docs).
    let (w64, h64) = (width as u64, height as u64);
    let needed = (!progressive).then(|| (w64.div_ceil(8) * h64.div_ceil(8)).div_ceil(4));
    crate::decode::check_declared_size(w64, h64, needed, file_len)?;
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let c = &seg[6 + 3 * i..9 + 3 * i];
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(bad("bad component sampling factors or table"));
        }
        comps.push(Component {
            id: c[0],
            h,
            v,
            tq: usize::from(c[2]),
            bw: 0,
            bh: 0,
            coefs: Vec::new(),
            qtable: None,
            coef_bits: [-1; 64],
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcus_x = width.div_ceil(8 * hmax);
    let mcus_y = height.div_ceil(8 * vmax);
    let blocks: usize = comps.iter().map(|c| mcus_x * c.h * mcus_y * c.v).sum();
    // 2^22 blocks of 64 coefficients is 512 MiB, the image crate's default
    // allocation limit (about 170 megapixels at 4:2:0).
    if blocks > (1 << 22) {
        return Err(unsupported(format!("JPEG too large ({width}x{height})")));
    }
    for c in &mut comps {
        c.bw = mcus_x * c.h;
        c.bh = mcus_y * c.v;
        c.coefs = take_blocks(c.bw * c.bh);
    }
    Ok(Frame {
        width,
        height,
        progressive,
        comps,
        hmax,
        vmax,
        mcus_x,
        mcus_y,
    })
}

fn parse_dqt(mut seg: &[u8], qt: &mut [Option<[u16; 64]>; 4]) -> Result<(), Failure> {
    while !seg.is_empty() {
        let pq = seg[0] >> 4;
        let tq = usize::from(seg[0] & 15);
        if tq > 3 || pq > 1 {
            return Err(bad("bad DQT"));
        }
        let size = if pq == 0 { 64 } else { 128 };
        if seg.len() < 1 + size {
            return Err(bad("truncated DQT"));
        }
        let mut t = [0u16; 64];
        for (i, &zz) in ZIGZAG.iter().enumerate() {
            t[zz] = if pq == 0 {
                u16::from(seg[1 + i])
            } else {
                u16::from_be_bytes([seg[1 + 2 * i], seg[2 + 2 * i]])
            };
        }
        qt[tq] = Some(t);
        seg = &seg[1 + size..];
    }
    Ok(())
}

fn parse_dht(
    mut seg: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Result<(), Failure> {
    while !seg.is_empty() {
        if seg.len() < 17 {
            return Err(bad("truncated DHT"));
        }
        let class = seg[0] >> 4;
        let id = usize::from(seg[0] & 15);
        if class > 1 || id > 3 {
            return Err(bad("bad DHT"));
        }
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&seg[1..17]);
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if seg.len() < 17 + total {
            return Err(bad("truncated DHT"));
        }
        let table = Huffman::new(&counts, seg[17..17 + total].to_vec())?;
        if class == 0 {
            dc[id] = Some(table);
        } else {
            ac[id] = Some(table);
        }
        seg = &seg[17 + total..];
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn decode_scan(
    seg: &[u8],
    data: &[u8],
    start: usize,
    f: &mut Frame,
    qt: &[Option<[u16; 64]>; 4],
    dc_tables: &[Option<Huffman>; 4],
    ac_tables: &[Option<Huffman>; 4],
    restart_interval: usize,
    budget: &mut u64,
) -> Result<usize, Failure> {
    if seg.is_empty() {
        return Err(bad("bad SOS"));
    }
    let ns = usize::from(seg[0]);
    if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 {
        return Err(bad("bad SOS"));
    }
    let mut scomps = Vec::with_capacity(ns);
    for i in 0..ns {
        let cid = seg[1 + 2 * i];
        let t = seg[2 + 2 * i];
        let ci = f
            .comps
            .iter()
            .position(|c| c.id == cid)
            .ok_or_else(|| bad("scan names an unknown component"))?;
        scomps.push((ci, usize::from(t >> 4), usize::from(t & 15)));
    }
    let ss = usize::from(seg[1 + 2 * ns]);
    let se = usize::from(seg[2 + 2 * ns]);
    let ah = u32::from(seg[3 + 2 * ns] >> 4);
    let al = u32::from(seg[3 + 2 * ns] & 15);
    if f.progressive {
        let bad_scan = ss > se
            || se > 63
            || (ss == 0 && se != 0)
            || (ss > 0 && ns != 1)
            || al > 13
            || (ah != 0 && ah != al + 1);
        if bad_scan {
            return Err(bad("bad progressive scan parameters"));
        }
    } else if ss != 0 || se != 63 || ah != 0 || al != 0 {
        // libjpeg-turbo ignores these for sequential scans with a warning.
    }
    // Latch quantisation tables (jdinput.c latch_quant_tables) and track
    // coefficient precision (jdphuff.c start_pass_phuff_decoder).
    for &(ci, _, _) in &scomps {
        let c = &mut f.comps[ci];
        if c.qtable.is_none() {
            c.qtable = Some(qt[c.tq].ok_or_else(|| bad("missing quantization table"))?);
        }
        if f.progressive {
            for k in ss..=se {
                c.coef_bits[k] = al as i32;
            }
        } else {
            c.coef_bits = [0; 64];
        }
    }
    let need_dc = !f.progressive || (ss == 0 && ah == 0);
    let need_ac = !f.progressive || ss > 0;
    for &(_, td, ta) in &scomps {
        if need_dc && dc_tables.get(td).and_then(|t| t.as_ref()).is_none() {
            return Err(bad("missing DC Huffman table"));
        }
        if need_ac
            && (!f.progressive || ah == 0)
            && ac_tables.get(ta).and_then(|t| t.as_ref()).is_none()
        {
            return Err(bad("missing AC Huffman table"));
        }
        if need_ac
            && f.progressive
            && ah != 0
            && ac_tables.get(ta).and_then(|t| t.as_ref()).is_none()
        {
            return Err(bad("missing AC Huffman table"));
        }
    }
    let mut br = BitReader::new(data, start);
    let mut preds = [0i32; 4];
    let mut eobrun: u32 = 0;
    // MCU geometry.
    let (mcus_x, mcus_y) = if ns == 1 {
        let c = &f.comps[scomps[0].0];
        let cw = (f.width * c.h).div_ceil(f.hmax);
        let chh = (f.height * c.v).div_ceil(f.vmax);
        (cw.div_ceil(8), chh.div_ceil(8))
    } else {
        (f.mcus_x, f.mcus_y)
    };
    let total = mcus_x * mcus_y;
    // The scan's cost in block visits, charged before any is decoded.
    let blocks_per_mcu: usize = if ns == 1 {
        1
    } else {
        scomps
            .iter()
            .map(|&(ci, _, _)| f.comps[ci].h * f.comps[ci].v)
            .sum()
    };
    let cost = (total as u64).saturating_mul(blocks_per_mcu as u64);
    *budget = budget.checked_sub(cost).ok_or_else(|| {
        unsupported(format!(
            "JPEG whose scans pass over each block more than {MAX_SCANS_PER_BLOCK} times on average (repeated scans: a damaged or hostile file)"
        ))
    })?;
    let mut todo = restart_interval;
    for m in 0..total {
        if restart_interval > 0 {
            if todo == 0 {
                br.restart();
                preds = [0; 4];
                eobrun = 0;
                todo = restart_interval;
            }
            todo -= 1;
        }
        let (mx, my) = (m % mcus_x, m / mcus_x);
        for (si, &(ci, td, ta)) in scomps.iter().enumerate() {
            let (bh_n, bv_n) = if ns == 1 {
                (1, 1)
            } else {
                (f.comps[ci].h, f.comps[ci].v)
            };
            for v in 0..bv_n {
                for h in 0..bh_n {
                    let (bx, by) = if ns == 1 {
                        (mx, my)
                    } else {
                        (mx * bh_n + h, my * bv_n + v)
                    };
                    let comp = &mut f.comps[ci];
                    let idx = by * comp.bw + bx;
                    let blk = &mut comp.coefs[idx];
                    if !f.progressive {
                        let dct = dc_tables[td]
                            .as_ref()
                            .ok_or_else(|| bad("missing DC table"))?;
                        let act = ac_tables[ta]
                            .as_ref()
                            .ok_or_else(|| bad("missing AC table"))?;
                        decode_block_baseline(&mut br, dct, act, &mut preds[si], blk)?;
                    } else if ss == 0 {
                        if ah == 0 {
                            let dct = dc_tables[td]
                                .as_ref()
                                .ok_or_else(|| bad("missing DC table"))?;
                            let s = u32::from(br.decode(dct)?);
                            if s > 16 {
                                return Err(bad("bad DC coefficient size"));
                            }
                            preds[si] = preds[si].wrapping_add(br.receive_extend(s));
                            blk[0] = (preds[si] << al) as i16;
                        } else if br.bit() != 0 {
                            blk[0] |= (1i32 << al) as i16;
                        }
                    } else {
                        let act = ac_tables[ta]
                            .as_ref()
                            .ok_or_else(|| bad("missing AC table"))?;
                        if ah == 0 {
                            decode_ac_first(&mut br, act, blk, ss, se, al, &mut eobrun)?;
                        } else {
                            decode_ac_refine(&mut br, act, blk, ss, se, al, &mut eobrun)?;
                        }
                    }
                }
            }
        }
    }
    if br.used_past_end() {
        return Err(bad("image data is truncated"));
    }
    // Continue after the scan's entropy-coded data: at the marker that ended it.
    let mut p = if br.marker.is_some() {
        br.pos
    } else {
        br.pos.min(data.len())
    };
    // If the reader stopped inside the data (read-ahead), scan forward to the next marker.
    while p + 1 < data.len()
        && !(data[p] == 0xFF
            && data[p + 1] != 0x00
            && !(0xD0..=0xD7).contains(&data[p + 1])
            && data[p + 1] != 0xFF)
    {
        p += 1;
    }
    Ok(p)
}

fn decode_block_baseline(
    br: &mut BitReader<'_>,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    blk: &mut [i16; 64],
) -> Result<(), Failure> {
    let s = u32::from(br.decode(dc)?);
    if s > 16 {
        return Err(bad("bad DC coefficient size"));
    }
    *pred = pred.wrapping_add(br.receive_extend(s));
    blk[0] = *pred as i16;
    let mut k = 1usize;
    while k < 64 {
        // Code and magnitude bits in one lookup; the same bits consumed and
        // the same coefficient as the two steps below.
        if br.nbits < 16 {
            br.fill();
        }
        let (used, run, value) = ac.fast_ac[(br.acc >> (64 - FAST_BITS)) as usize];
        if used > 0 {
            br.consume(u32::from(used));
            k += usize::from(run);
            blk[natural(k)] = value;
            k += 1;
            continue;
        }
        let rs = br.decode(ac)?;
        let r = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += r;
            blk[natural(k)] = br.receive_extend(s) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            break;
        }
        k += 1;
    }
    Ok(())
}

fn decode_ac_first(
    br: &mut BitReader<'_>,
    ac: &Huffman,
    blk: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), Failure> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        let rs = br.decode(ac)?;
        let r = u32::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += r as usize;
            let v = br.receive_extend(s);
            blk[natural(k)] = (v << al) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            *eobrun = 1 << r;
            if r != 0 {
                *eobrun += br.bits(r) as u32;
            }
            *eobrun -= 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

fn decode_ac_refine(
    br: &mut BitReader<'_>,
    ac: &Huffman,
    blk: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), Failure> {
    let p1: i32 = 1 << al;
    let m1: i32 = -1 << al;
    if *eobrun > 0 && blk[1..].iter().all(|&c| c == 0) {
        // Inside an end-of-band run, a block whose AC coefficients are all
        // still zero has no correction bits to read (the loop below would
        // find none): one vectorised test instead of a walk over the band.
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = br.decode(ac)?;
            let mut r = i32::from(rs >> 4);
            let s = u32::from(rs & 15);
            let mut value = 0i32;
            if s != 0 {
                // s must be 1 in a refinement scan (libjpeg warns otherwise).
                value = if br.bit() != 0 { p1 } else { m1 };
            } else if r != 15 {
                *eobrun = 1 << r;
                if r != 0 {
                    *eobrun += br.bits(r as u32) as u32;
                }
                break;
            }
            // Advance over already-nonzero coefficients (appending correction
            // bits) and r zero-history ones.
            while k <= se {
                let z = natural(k);
                let coef = i32::from(blk[z]);
                if coef != 0 {
                    if br.bit() != 0 && (coef & p1) == 0 {
                        blk[z] = if coef >= 0 {
                            (coef + p1) as i16
                        } else {
                            (coef + m1) as i16
                        };
                    }
                } else {
                    if r == 0 {
                        if value != 0 {
                            blk[z] = value as i16;
                        }
                        k += 1;
                        break;
                    }
                    r -= 1;
                }
                k += 1;
            }
        }
    }
    if *eobrun > 0 {
        // Scan the remaining coefficients for correction bits.
        while k <= se {
            let z = natural(k);
            let coef = i32::from(blk[z]);
            if coef != 0 && br.bit() != 0 && (coef & p1) == 0 {
                blk[z] = if coef >= 0 {
                    (coef + p1) as i16
                } else {
                    (coef + m1) as i16
                };
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// IDCT (jidctint.c, jpeg_idct_islow)
// ---------------------------------------------------------------------------

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1i64 << (n - 1))) >> n
}

/// libjpeg's post-IDCT `range_limit[x & RANGE_MASK]` (jdmaster.c
/// `prepare_range_limit_table`, with `IDCT_range_limit` offset by
/// `CENTERJSAMPLE`): a table lookup, as libjpeg's, so that no branch sits in
/// the IDCT's output loop.
#[inline(always)]
fn idct_limit(x: i64) -> u8 {
    RANGE_LIMIT[(x as i32 & 1023) as usize]
}

/// [`idct_limit`]'s table: `v + 128` for `v < 128`, then 255 up to 511, 0 up
/// to 895 (wrapped negatives), `v − 896` for the last 128.
const RANGE_LIMIT: [u8; 1024] = {
    let mut t = [0u8; 1024];
    let mut v = 0;
    while v < 1024 {
        t[v] = match v {
            0..=127 => (v + 128) as u8,
            128..=511 => 255,
            512..=895 => 0,
            _ => (v - 896) as u8,
        };
        v += 1;
    }
    t
};

/// `jpeg_idct_islow` of one block into `out` (8 rows of 8 samples, row `r`
/// at `out[r * stride..]`). Both 1-D passes run over 8 lanes at once
/// ([`idct_lanes`]: the 8 columns, then the 8 rows of the transposed work
/// array), the integer operations of jidctint.c in the same order per
/// sample, so the same results; the all-zero-AC shortcuts of the C code are
/// exact (they give what the full computation gives) and are not needed.
#[inline(always)]
fn idct_islow(coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
    // DEQUANTIZE: ISLOW_MULT_TYPE is a 16-bit multiplier in SIMD builds.
    let mut x = [[0i64; 8]; 8];
    for (k, xk) in x.iter_mut().enumerate() {
        for (l, v) in xk.iter_mut().enumerate() {
            let i = k * 8 + l;
            *v = i64::from(i32::from(coef[i]) * i32::from(q[i] as i16));
        }
    }
    // Pass 1 (columns): lanes are columns; the work array keeps `int`s.
    let cols = idct_lanes(&x);
    let n = CONST_BITS - PASS1_BITS;
    // Transposed for pass 2: `x[k][row]` = work array row `row`, element `k`.
    for (r, cr) in cols.iter().enumerate() {
        for (col, v) in cr.iter().enumerate() {
            x[col][r] = i64::from(descale(*v, n) as i32);
        }
    }
    // Pass 2 (rows): lanes are rows.
    let rows = idct_lanes(&x);
    let n = CONST_BITS + PASS1_BITS + 3;
    for (c, rc) in rows.iter().enumerate() {
        for (r, v) in rc.iter().enumerate() {
            out[r * stride + c] = idct_limit(descale(*v, n));
        }
    }
}

/// One 1-D islow IDCT (jidctint.c, before descaling) over 8 lanes:
/// `x[k][lane]` is input `k` of a lane, the result's `[j][lane]` output `j`.
#[inline(always)]
fn idct_lanes(x: &[[i64; 8]; 8]) -> [[i64; 8]; 8] {
    let mut out = [[0i64; 8]; 8];
    for l in 0..8 {
        let z2 = x[2][l];
        let z3 = x[6][l];
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let tmp0 = (x[0][l] + x[4][l]) << CONST_BITS;
        let tmp1 = (x[0][l] - x[4][l]) << CONST_BITS;
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        let (o0, o1, o2, o3) = odd_part(x[7][l], x[5][l], x[3][l], x[1][l]);
        out[0][l] = tmp10 + o3;
        out[7][l] = tmp10 - o3;
        out[1][l] = tmp11 + o2;
        out[6][l] = tmp11 - o2;
        out[2][l] = tmp12 + o1;
        out[5][l] = tmp12 - o1;
        out[3][l] = tmp13 + o0;
        out[4][l] = tmp13 - o0;
    }
    out
}

/// The odd part of the 1-D IDCT on inputs `(tmp0, tmp1, tmp2, tmp3)` =
/// coefficients 7, 5, 3, 1; returns the updated `(tmp0, tmp1, tmp2, tmp3)`.
#[inline(always)]
fn odd_part(tmp0: i64, tmp1: i64, tmp2: i64, tmp3: i64) -> (i64, i64, i64, i64) {
    let z4 = tmp1 + tmp3;
    let z3 = tmp0 + tmp2;
    let z2 = tmp1 + tmp2;
    let z1 = tmp0 + tmp3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let tmp3 = tmp3 * FIX_1_501321110;
    let tmp2 = tmp2 * FIX_3_072711026;
    let tmp1 = tmp1 * FIX_2_053119869;
    let tmp0 = tmp0 * FIX_0_298631336;
    let z4 = z4 * -FIX_0_390180644 + z5;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    (
        tmp0 + z1 + z3,
        tmp1 + z2 + z4,
        tmp2 + z2 + z3,
        tmp3 + z1 + z4,
    )
}

// ---------------------------------------------------------------------------
// Upsampling and colour conversion
// ---------------------------------------------------------------------------

/// One component's samples: `h` rows of `w`, row `y` at
/// `data[y * stride..][..w]` (a plane straight from the IDCT keeps its
/// whole-block width as stride; nothing is copied to crop it).
struct Plane {
    w: usize,
    h: usize,
    stride: usize,
    data: Vec<u8>,
}

impl Plane {
    /// Row `y`; rows past the last repeat it (the context rows libjpeg's
    /// `jdmainct.c` provides below the image).
    #[inline]
    fn row(&self, y: usize) -> &[u8] {
        let y = y.min(self.h - 1);
        &self.data[y * self.stride..y * self.stride + self.w]
    }

    /// The samples as one contiguous `w × h` buffer (rows moved down in
    /// place when the stride is wider).
    fn into_contiguous(mut self) -> Vec<u8> {
        if self.stride != self.w {
            for y in 1..self.h {
                let from = y * self.stride;
                self.data.copy_within(from..from + self.w, y * self.w);
            }
        }
        self.data.truncate(self.w * self.h);
        self.data
    }
}

/// The component's samples: every block through [`idct_islow`], compiled
/// for the widest vector unit the CPU has (`pulp` runtime dispatch; integer
/// arithmetic, so the same samples on every CPU).
fn component_plane(c: &Component, width: usize, height: usize, hmax: usize, vmax: usize) -> Plane {
    struct Op<'a>(&'a Component, usize, usize, usize, usize);
    impl pulp::WithSimd for Op<'_> {
        type Output = Plane;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) -> Plane {
            let Op(c, width, height, hmax, vmax) = self;
            component_plane_impl(c, width, height, hmax, vmax)
        }
    }
    pulp::Arch::new().dispatch(Op(c, width, height, hmax, vmax))
}

#[inline(always)]
fn component_plane_impl(
    c: &Component,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
) -> Plane {
    let pw = c.bw * 8;
    let ph = c.bh * 8;
    // Every sample is written below: the blocks tile the whole buffer.
    let mut full = take_bytes(pw * ph);
    let zero_q = [0u16; 64];
    let q = c.qtable.as_ref().unwrap_or(&zero_q);
    for by in 0..c.bh {
        for bx in 0..c.bw {
            let off = by * 8 * pw + bx * 8;
            idct_islow(&c.coefs[by * c.bw + bx], q, &mut full[off..], pw);
        }
    }
    Plane {
        w: (width * c.h).div_ceil(hmax),
        h: (height * c.v).div_ceil(vmax),
        stride: pw,
        data: full,
    }
}

/// Upsamples `p` to `width x height` with libjpeg-turbo's method for the
/// component's sampling factors (a full-size component is returned as is).
fn upsample(
    p: Plane,
    c: &Component,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
) -> Result<Plane, Failure> {
    let (hin, vin) = (c.h, c.v);
    if hin == hmax && vin == vmax {
        // Full size already: `p.w == width`, `p.h == height`.
        return Ok(p);
    }
    // Every sample is written by each method below.
    let mut out = take_bytes(width * height);
    // One upsampled row before cropping to `width` (odd widths).
    let mut full = vec![0u8; 2 * p.w];
    if hin * 2 == hmax && vin == vmax {
        for y in 0..height {
            let dst = &mut out[y * width..(y + 1) * width];
            h2_line(p.row(y), dst, p.w > 2, &mut full);
        }
    } else if hin == hmax && vin * 2 == vmax {
        // h1v2_fancy_upsample.
        for y in 0..height {
            let r = y / 2;
            let (near, far, bias) = if y % 2 == 0 {
                (p.row(r), p.row(r.saturating_sub(1)), 1)
            } else {
                (p.row(r), p.row(r + 1), 2)
            };
            for x in 0..width {
                out[y * width + x] =
                    ((u32::from(near[x]) * 3 + u32::from(far[x]) + bias) >> 2) as u8;
            }
        }
    } else if hin * 2 == hmax && vin * 2 == vmax {
        for y in 0..height {
            let r = y / 2;
            let dst = &mut out[y * width..(y + 1) * width];
            if p.w > 2 {
                let near = p.row(r);
                let far = if y % 2 == 0 {
                    p.row(r.saturating_sub(1))
                } else {
                    p.row(r + 1)
                };
                h2v2_fancy_line(near, far, dst, &mut full);
            } else {
                h2_line(p.row(r), dst, false, &mut full);
            }
        }
    } else if hmax.is_multiple_of(hin) && vmax.is_multiple_of(vin) {
        let (he, ve) = (hmax / hin, vmax / vin);
        for y in 0..height {
            let src = p.row(y / ve);
            for x in 0..width {
                out[y * width + x] = src[x / he];
            }
        }
    } else {
        return Err(unsupported("fractional chroma sampling factors"));
    }
    recycle_bytes(p.data);
    Ok(Plane {
        w: width,
        h: height,
        stride: width,
        data: out,
    })
}

/// One row of `h2v1` upsampling, fancy (triangle) or box, through `full`
/// (`2 × src.len()` samples) into `dst` (at most that long).
fn h2_line(src: &[u8], dst: &mut [u8], fancy: bool, full: &mut [u8]) {
    let n = src.len();
    if fancy {
        let s = |i: usize| u32::from(src[i]);
        full[0] = src[0];
        full[1] = ((s(0) * 3 + s(1) + 2) >> 2) as u8;
        for i in 1..n - 1 {
            let v = s(i) * 3;
            full[2 * i] = ((v + s(i - 1) + 1) >> 2) as u8;
            full[2 * i + 1] = ((v + s(i + 1) + 2) >> 2) as u8;
        }
        full[2 * n - 2] = ((s(n - 1) * 3 + s(n - 2) + 1) >> 2) as u8;
        full[2 * n - 1] = src[n - 1];
    } else {
        for i in 0..n {
            full[2 * i] = src[i];
            full[2 * i + 1] = src[i];
        }
    }
    let w = dst.len();
    dst.copy_from_slice(&full[..w]);
}

/// One output row of `h2v2_fancy_upsample` from the nearest and the
/// next-nearest input rows, through `full` (`2 × near.len()` samples).
fn h2v2_fancy_line(near: &[u8], far: &[u8], dst: &mut [u8], full: &mut [u8]) {
    let n = near.len();
    let colsum = |i: usize| u32::from(near[i]) * 3 + u32::from(far[i]);
    let mut this = colsum(0);
    let mut next = colsum(1);
    full[0] = ((this * 4 + 8) >> 4) as u8;
    full[1] = ((this * 3 + next + 7) >> 4) as u8;
    let mut last = this;
    this = next;
    for i in 1..n - 1 {
        next = colsum(i + 1);
        full[2 * i] = ((this * 3 + last + 8) >> 4) as u8;
        full[2 * i + 1] = ((this * 3 + next + 7) >> 4) as u8;
        last = this;
        this = next;
    }
    full[2 * n - 2] = ((this * 3 + last + 8) >> 4) as u8;
    full[2 * n - 1] = ((this * 4 + 7) >> 4) as u8;
    let w = dst.len();
    dst.copy_from_slice(&full[..w]);
}

/// jdcolor.c `ycc_rgb_convert`: `(r, g, b)` before range limiting, from the
/// fixed-point entries `build_ycc_rgb_table` puts in its tables
/// (`SCALEBITS = 16`, `FIX(x) = (x·2¹⁶ + 0.5)` truncated, `c = Cb − 128` or
/// `Cr − 128`):
///
/// ```text
/// R = Y + ((FIX(1.40200)·cr + ONE_HALF) >> 16)
/// G = Y + ((−FIX(0.34414)·cb + ONE_HALF − FIX(0.71414)·cr) >> 16)
/// B = Y + ((FIX(1.77200)·cb + ONE_HALF) >> 16)
/// ```
///
/// computed per pixel rather than looked up (every term fits an `i32`:
/// |FIX(1.772)·128| < 2²⁴), so the loop over pixels vectorises; a test holds
/// it to the tables for every `(Cb, Cr)`.
#[inline(always)]
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> (i32, i32, i32) {
    const ONE_HALF: i32 = 1 << 15;
    const FIX_1_40200: i32 = 91_881;
    const FIX_1_77200: i32 = 116_130;
    const FIX_0_71414: i32 = 46_802;
    const FIX_0_34414: i32 = 22_554;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let g = (-FIX_0_34414 * cb + ONE_HALF - FIX_0_71414 * cr) >> 16;
    (
        y + ((FIX_1_40200 * cr + ONE_HALF) >> 16),
        y + g,
        y + ((FIX_1_77200 * cb + ONE_HALF) >> 16),
    )
}

/// YCbCr planes (`w × h` each) to interleaved RGB (`out`: 3 bytes per
/// pixel), row by row, under `pulp` dispatch (integer arithmetic: the same
/// bytes on every CPU).
fn ycc_planes_to_rgb(planes: [&Plane; 3], w: usize, h: usize, out: &mut [u8]) {
    struct Op<'a>([&'a Plane; 3], usize, usize, &'a mut [u8]);
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            let Op([py, pcb, pcr], w, h, out) = self;
            for (r, dst) in out.chunks_exact_mut(3 * w).take(h).enumerate() {
                let rows = py.row(r).iter().zip(pcb.row(r)).zip(pcr.row(r));
                for (px, ((y, cb), cr)) in dst.chunks_exact_mut(3).zip(rows) {
                    let (r, g, b) = ycc_to_rgb(*y, *cb, *cr);
                    px[0] = clamp255(r);
                    px[1] = clamp255(g);
                    px[2] = clamp255(b);
                }
            }
        }
    }
    pulp::Arch::new().dispatch(Op(planes, w, h, out));
}

#[inline(always)]
fn clamp255(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

fn render(f: Frame, saw_jfif: bool, adobe: Option<u8>) -> Result<JpegImage, Failure> {
    let (w, h) = (f.width, f.height);
    let mut planes = Vec::with_capacity(f.comps.len());
    for c in &f.comps {
        let p = component_plane(c, w, h, f.hmax, f.vmax);
        planes.push(upsample(p, c, w, h, f.hmax, f.vmax)?);
    }
    let ids: Vec<u8> = f.comps.iter().map(|c| c.id).collect();
    for c in f.comps {
        recycle_blocks(c.coefs);
    }
    if planes.len() == 1 {
        let plane = planes.pop().map(Plane::into_contiguous).unwrap_or_default();
        return Ok(JpegImage {
            width: w,
            height: h,
            pixels: JpegPixels::Gray(plane),
        });
    }
    let pixels = match planes.as_slice() {
        [p0, p1, p2] => {
            // jdapimin.c default_decompress_parms.
            let rgb_space = if saw_jfif {
                false
            } else if let Some(t) = adobe {
                t == 0
            } else {
                ids == [82, 71, 66]
            };
            // Every sample is written below.
            let mut out = take_bytes(w * h * 3);
            if rgb_space {
                for (y, dst) in out.chunks_exact_mut(3 * w).enumerate() {
                    let rows = p0.row(y).iter().zip(p1.row(y)).zip(p2.row(y));
                    for (px, ((a, b), c)) in dst.chunks_exact_mut(3).zip(rows) {
                        px.copy_from_slice(&[*a, *b, *c]);
                    }
                }
            } else {
                ycc_planes_to_rgb([p0, p1, p2], w, h, &mut out);
            }
            JpegPixels::Rgb(out)
        }
        [p0, p1, p2, p3] => {
            // 4 components: YCCK if Adobe transform is not 0, else CMYK.
            let ycck = matches!(adobe, Some(t) if t != 0);
            let mut out = take_bytes(w * h * 4);
            for (y, dst) in out.chunks_exact_mut(4 * w).enumerate() {
                let rows = p0
                    .row(y)
                    .iter()
                    .zip(p1.row(y))
                    .zip(p2.row(y))
                    .zip(p3.row(y));
                for (px, (((a, b), c), k)) in dst.chunks_exact_mut(4).zip(rows) {
                    if ycck {
                        let (r, g, b) = ycc_to_rgb(*a, *b, *c);
                        px[0] = clamp255(255 - r);
                        px[1] = clamp255(255 - g);
                        px[2] = clamp255(255 - b);
                    } else {
                        px[..3].copy_from_slice(&[*a, *b, *c]);
                    }
                    px[3] = *k;
                }
            }
            JpegPixels::Cmyk(out)
        }
        _ => {
            return Err(unsupported(format!(
                "JPEG with {} components",
                planes.len()
            )));
        }
    };
    for p in planes {
        recycle_bytes(p.data);
    }
    Ok(JpegImage {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn pixels(img: &JpegImage) -> &[u8] {
        match &img.pixels {
            JpegPixels::Gray(v) | JpegPixels::Rgb(v) | JpegPixels::Cmyk(v) => v,
        }
    }

    /// Decoding with buffers an earlier image of another size, sampling and
    /// colour space left in the pool gives the samples a first decode gives:
    /// every fixture decoded on a fresh thread (an empty pool), then all of
    /// them on one thread, forwards and backwards, each output given back.
    #[test]
    fn pooled_buffers_give_the_samples_of_fresh_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg");
        let mut files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        files.retain(|f| decode(f).is_ok());
        assert!(files.len() >= 16);
        let fresh: Vec<Vec<u8>> = files
            .iter()
            .map(|f| {
                let f = f.clone();
                std::thread::spawn(move || pixels(&decode(&f).ok().unwrap()).to_vec())
                    .join()
                    .unwrap()
            })
            .collect();
        let order: Vec<usize> = (0..files.len()).chain((0..files.len()).rev()).collect();
        for i in order {
            let img = decode(&files[i]).ok().unwrap();
            assert_eq!(pixels(&img), fresh[i].as_slice(), "fixture {i}");
            match img.pixels {
                JpegPixels::Gray(v) | JpegPixels::Rgb(v) | JpegPixels::Cmyk(v) => {
                    // Stale samples that a decode would not overwrite.
                    let mut v = v;
                    v.fill(0xA5);
                    recycle_bytes(v);
                }
            }
        }
    }

    /// One block: dequantise and inverse-transform into `out` (8 rows of
    /// `stride` samples).
    fn idct_islow_scalar(coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
        let mut ws = [0i32; 64];
        // DEQUANTIZE: ISLOW_MULT_TYPE is a 16-bit multiplier in SIMD builds.
        let dq = |i: usize| -> i64 { i64::from(i32::from(coef[i]) * i32::from(q[i] as i16)) };
        for col in 0..8 {
            if (1..8).all(|r| coef[r * 8 + col] == 0) {
                let dcval = (dq(col) << PASS1_BITS) as i32;
                for r in 0..8 {
                    ws[r * 8 + col] = dcval;
                }
                continue;
            }
            let z2 = dq(2 * 8 + col);
            let z3 = dq(6 * 8 + col);
            let z1 = (z2 + z3) * FIX_0_541196100;
            let tmp2 = z1 + z3 * -FIX_1_847759065;
            let tmp3 = z1 + z2 * FIX_0_765366865;
            let z2 = dq(col);
            let z3 = dq(4 * 8 + col);
            let tmp0 = (z2 + z3) << CONST_BITS;
            let tmp1 = (z2 - z3) << CONST_BITS;
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            let (t3, t2, t1, t0) = (
                dq(8 + col),
                dq(3 * 8 + col),
                dq(5 * 8 + col),
                dq(7 * 8 + col),
            );
            let (o0, o1, o2, o3) = odd_part(t0, t1, t2, t3);
            let n = CONST_BITS - PASS1_BITS;
            ws[col] = descale(tmp10 + o3, n) as i32;
            ws[7 * 8 + col] = descale(tmp10 - o3, n) as i32;
            ws[8 + col] = descale(tmp11 + o2, n) as i32;
            ws[6 * 8 + col] = descale(tmp11 - o2, n) as i32;
            ws[2 * 8 + col] = descale(tmp12 + o1, n) as i32;
            ws[5 * 8 + col] = descale(tmp12 - o1, n) as i32;
            ws[3 * 8 + col] = descale(tmp13 + o0, n) as i32;
            ws[4 * 8 + col] = descale(tmp13 - o0, n) as i32;
        }
        let n = CONST_BITS + PASS1_BITS + 3;
        for row in 0..8 {
            let w = &ws[row * 8..row * 8 + 8];
            let o = &mut out[row * stride..row * stride + 8];
            if w[1..].iter().all(|&x| x == 0) {
                let dc = idct_limit(descale(i64::from(w[0]), PASS1_BITS + 3));
                o.fill(dc);
                continue;
            }
            let z2 = i64::from(w[2]);
            let z3 = i64::from(w[6]);
            let z1 = (z2 + z3) * FIX_0_541196100;
            let tmp0 = (i64::from(w[0]) + i64::from(w[4])) << CONST_BITS;
            let tmp3 = z1 + z2 * FIX_0_765366865;
            let tmp1 = (i64::from(w[0]) - i64::from(w[4])) << CONST_BITS;
            let tmp2 = z1 + z3 * -FIX_1_847759065;
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            let (o0, o1, o2, o3) = odd_part(
                i64::from(w[7]),
                i64::from(w[5]),
                i64::from(w[3]),
                i64::from(w[1]),
            );
            o[0] = idct_limit(descale(tmp10 + o3, n));
            o[7] = idct_limit(descale(tmp10 - o3, n));
            o[1] = idct_limit(descale(tmp11 + o2, n));
            o[6] = idct_limit(descale(tmp11 - o2, n));
            o[2] = idct_limit(descale(tmp12 + o1, n));
            o[5] = idct_limit(descale(tmp12 - o1, n));
            o[3] = idct_limit(descale(tmp13 + o0, n));
            o[4] = idct_limit(descale(tmp13 - o0, n));
        }
    }

    /// jdcolor.c `build_ycc_rgb_table`: (Cr→R, Cb→B, Cr→G, Cb→G) for sample `i`.
    struct YccTables {
        cr_r: [i32; 256],
        cb_b: [i32; 256],
        cr_g: [i64; 256],
        cb_g: [i64; 256],
    }

    impl YccTables {
        fn new() -> Self {
            const SCALEBITS: u32 = 16;
            const ONE_HALF: i64 = 1 << (SCALEBITS - 1);
            let fix = |x: f64| (x * f64::from(1u32 << SCALEBITS) + 0.5) as i64;
            let mut t = YccTables {
                cr_r: [0; 256],
                cb_b: [0; 256],
                cr_g: [0; 256],
                cb_g: [0; 256],
            };
            for i in 0..256 {
                let x = i as i64 - 128;
                t.cr_r[i] = ((fix(1.40200) * x + ONE_HALF) >> SCALEBITS) as i32;
                t.cb_b[i] = ((fix(1.77200) * x + ONE_HALF) >> SCALEBITS) as i32;
                t.cr_g[i] = -fix(0.71414) * x;
                t.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
            }
            t
        }

        /// `(r, g, b)` before range limiting.
        #[inline]
        fn convert(&self, y: u8, cb: u8, cr: u8) -> (i32, i32, i32) {
            let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
            let g = ((self.cb_g[cb] + self.cr_g[cr]) >> 16) as i32;
            (y + self.cr_r[cr], y + g, y + self.cb_b[cb])
        }
    }

    /// The per-pixel arithmetic equals jdcolor.c's tables for every
    /// `(Cb, Cr)` (Y only adds).
    #[test]
    fn ycc_arithmetic_equals_the_tables() {
        let t = YccTables::new();
        for cb in 0..=255u8 {
            for cr in 0..=255u8 {
                for y in [0u8, 77, 255] {
                    assert_eq!(ycc_to_rgb(y, cb, cr), t.convert(y, cb, cr), "{y} {cb} {cr}");
                }
            }
        }
    }

    /// The lane IDCT gives the samples of jidctint.c's scalar loop (with its
    /// all-zero shortcuts) on random blocks: sparse and dense, small and
    /// extreme coefficients (overflowing and wrapping paths included), every
    /// quantiser range.
    #[test]
    fn lane_idct_equals_the_scalar_loop() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..20_000 {
            let mut coef = [0i16; 64];
            let mut q = [0u16; 64];
            let density = [0.02, 0.2, 1.0][case % 3];
            let scale: i32 = [8, 256, 32767][(case / 3) % 3];
            for i in 0..64 {
                if i == 0 || rng.random_bool(density) {
                    coef[i] = rng.random_range(-scale..=scale) as i16;
                }
                q[i] = match case % 4 {
                    0 => 1,
                    1 => rng.random_range(1..=64),
                    2 => rng.random_range(1..=255),
                    _ => rng.random(),
                };
            }
            let (mut a, mut b) = ([0u8; 8 * 11], [0u8; 8 * 11]);
            idct_islow(&coef, &q, &mut a, 11);
            idct_islow_scalar(&coef, &q, &mut b, 11);
            assert_eq!(a, b, "case {case}: {coef:?} {q:?}");
        }
    }
}

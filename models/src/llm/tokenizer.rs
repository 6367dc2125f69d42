//! The SentencePiece tokenizer embedded in a GGUF file (`tokenizer.ggml.model = llama`), as
//! Google's sentencepiece runs Gemma's BPE model: spaces become `▁`; user-defined pieces
//! (newline runs, tabs, HTML tags) and, when asked, control tokens are cut out of that text,
//! longest first; each remaining fragment is merged pairwise, always merging the adjacent pair
//! whose concatenation is the highest-scoring piece (leftmost on ties); characters outside the
//! vocabulary fall back to `<0xNN>` byte tokens.
//!
//! `models/tests/fixtures/gemma_tokens.json` holds token ids recorded with the sentencepiece
//! library over the same vocabulary (`scripts/reference/gemma_tokenizer_reference.py`); a
//! test checks this implementation reproduces them.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use candle_core::quantized::gguf_file::Content;

use crate::{Error, Result};

const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

/// A GGUF SentencePiece vocabulary.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
    ids: HashMap<String, u32>,
    /// Control and user-defined tokens, longest first.
    specials: Vec<(String, u32, bool)>,
    byte_ids: [u32; 256],
    /// `<bos>`.
    pub bos: u32,
    /// `<eos>`.
    pub eos: u32,
    add_space_prefix: bool,
}

fn meta<'a>(c: &'a Content, key: &str) -> Result<&'a candle_core::quantized::gguf_file::Value> {
    c.metadata.get(key).ok_or_else(|| Error::Tokenizer(format!("GGUF metadata has no `{key}`")))
}

impl GgufTokenizer {
    /// Reads the vocabulary from a GGUF file's metadata.
    pub fn from_gguf(c: &Content) -> Result<Self> {
        let model = meta(c, "tokenizer.ggml.model")?.to_string()?;
        if model != "llama" {
            return Err(Error::Tokenizer(format!(
                "tokenizer model `{model}` is not supported (only SentencePiece, `llama`)"
            )));
        }
        let pieces: Vec<String> = meta(c, "tokenizer.ggml.tokens")?
            .to_vec()?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<_>>()?;
        let scores: Vec<f32> = meta(c, "tokenizer.ggml.scores")?
            .to_vec()?
            .iter()
            .map(|v| v.to_f32())
            .collect::<candle_core::Result<_>>()?;
        let types: Vec<i32> = meta(c, "tokenizer.ggml.token_type")?
            .to_vec()?
            .iter()
            .map(|v| v.to_i32())
            .collect::<candle_core::Result<_>>()?;
        if scores.len() != pieces.len() || types.len() != pieces.len() {
            return Err(Error::Tokenizer("tokens, scores and types differ in length".into()));
        }
        let id = |key: &str| -> Result<u32> { Ok(meta(c, key)?.to_u32()?) };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let add_space_prefix = c
            .metadata
            .get("tokenizer.ggml.add_space_prefix")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(true);
        let mut ids = HashMap::with_capacity(pieces.len());
        let mut byte_ids = [u32::MAX; 256];
        let mut specials = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let i = i as u32;
            ids.entry(p.clone()).or_insert(i);
            match types[i as usize] {
                BYTE => {
                    if let Some(b) = p
                        .strip_prefix("<0x")
                        .and_then(|h| h.strip_suffix('>'))
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        byte_ids[b as usize] = i;
                    }
                }
                t @ (CONTROL | USER_DEFINED) if !p.is_empty() => {
                    specials.push((p.clone(), i, t == CONTROL));
                }
                _ => {}
            }
        }
        if let Some(b) = byte_ids.iter().position(|&i| i == u32::MAX) {
            return Err(Error::Tokenizer(format!("no byte-fallback token for byte {b:#04x}")));
        }
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(Self { pieces, scores, types, ids, specials, byte_ids, bos, eos, add_space_prefix })
    }

    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The id of an exact piece (`<end_of_turn>`).
    pub fn token(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    /// Token ids for `text`. With `parse_control`, control tokens written in the text
    /// (`<start_of_turn>`) become those tokens; without it they are ordinary text, so text
    /// from outside (a headline) cannot inject turn markers.
    pub fn encode(&self, text: &str, parse_control: bool) -> Vec<u32> {
        let mut escaped = text.replace(' ', "\u{2581}");
        if self.add_space_prefix && !escaped.is_empty() {
            escaped.insert(0, '\u{2581}');
        }
        // Fragments: Ok(text) or Err(token id).
        let mut frags: Vec<std::result::Result<&str, u32>> = vec![Ok(&escaped)];
        for (piece, id, control) in &self.specials {
            if *control && !parse_control {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                match f {
                    Ok(s) if s.contains(piece.as_str()) => {
                        let mut rest = s;
                        while let Some(at) = rest.find(piece.as_str()) {
                            if at > 0 {
                                next.push(Ok(&rest[..at]));
                            }
                            next.push(Err(*id));
                            rest = &rest[at + piece.len()..];
                        }
                        if !rest.is_empty() {
                            next.push(Ok(rest));
                        }
                    }
                    other => next.push(other),
                }
            }
            frags = next;
        }
        let mut out = Vec::new();
        for f in frags {
            match f {
                Err(id) => out.push(id),
                Ok(s) => self.spm(s, &mut out),
            }
        }
        out
    }

    fn spm(&self, text: &str, out: &mut Vec<u32>) {
        #[derive(Clone, Copy)]
        struct Sym {
            start: usize,
            len: usize,
            prev: Option<usize>,
            next: Option<usize>,
        }
        #[derive(PartialEq)]
        struct Bigram {
            score: f32,
            left: usize,
            len: usize,
        }
        impl Eq for Bigram {}
        impl Ord for Bigram {
            fn cmp(&self, o: &Self) -> Ordering {
                // Highest score first, then leftmost.
                self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
            }
        }
        impl PartialOrd for Bigram {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut syms: Vec<Sym> = Vec::new();
        for (i, (start, ch)) in text.char_indices().enumerate() {
            syms.push(Sym { start, len: ch.len_utf8(), prev: i.checked_sub(1), next: Some(i + 1) });
        }
        if let Some(last) = syms.last_mut() {
            last.next = None;
        }
        let mut heap = BinaryHeap::new();
        let try_add = |heap: &mut BinaryHeap<Bigram>, syms: &[Sym], l: usize| {
            let Some(r) = syms[l].next else { return };
            let s = &text[syms[l].start..syms[r].start + syms[r].len];
            if let Some(&id) = self.ids.get(s) {
                heap.push(Bigram { score: self.scores[id as usize], left: l, len: s.len() });
            }
        };
        for l in 0..syms.len() {
            try_add(&mut heap, &syms, l);
        }
        while let Some(b) = heap.pop() {
            let l = b.left;
            let Some(r) = syms[l].next else { continue };
            // Stale: either side already merged into something else.
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != b.len {
                continue;
            }
            syms[l].len += syms[r].len;
            syms[r].len = 0;
            syms[l].next = syms[r].next;
            if let Some(n) = syms[r].next {
                syms[n].prev = Some(l);
            }
            if let Some(p) = syms[l].prev {
                try_add(&mut heap, &syms, p);
            }
            try_add(&mut heap, &syms, l);
        }
        let mut i = if syms.is_empty() { None } else { Some(0) };
        while let Some(k) = i {
            let s = &text[syms[k].start..syms[k].start + syms[k].len];
            match self.ids.get(s) {
                Some(&id) => out.push(id),
                None => out.extend(s.bytes().map(|b| self.byte_ids[b as usize])),
            }
            i = syms[k].next;
        }
    }

    /// The bytes a token stands for (nothing for control tokens).
    pub fn bytes(&self, id: u32, out: &mut Vec<u8>) {
        let Some(p) = self.pieces.get(id as usize) else { return };
        match self.types[id as usize] {
            CONTROL => {}
            BYTE => {
                if let Some(b) = self.byte_ids.iter().position(|&i| i == id) {
                    out.push(b as u8);
                }
            }
            _ => out.extend_from_slice(p.replace('\u{2581}', " ").as_bytes()),
        }
    }

    /// Text for a sequence of tokens (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            self.bytes(id, &mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

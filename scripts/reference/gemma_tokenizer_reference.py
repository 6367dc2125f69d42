"""Records reference token ids for Gemma-3's tokenizer with Google's sentencepiece.

The GGUF file carries the SentencePiece vocabulary (pieces, scores, types). This script
rebuilds the SentencePiece BPE model from it (byte fallback on, no dummy prefix, whitespace
kept, as Gemma's tokenizer.model) and encodes the test sentences with the sentencepiece
library, an implementation independent of Kairos'. Output: models/tests/fixtures/
gemma_tokens.json. Needs `pip install gguf sentencepiece protobuf`.

Usage: python3 scripts/reference/gemma_tokenizer_reference.py target/models/gemma-3-270m-q4_k_m.gguf
"""
import json
import sys

import sentencepiece as spm
from gguf import GGUFReader
from sentencepiece import sentencepiece_model_pb2 as pb

SENTENCES = [
    "Bitcoin surges to a record high",
    "BTC rallies to new highs; ETH follows.",
    "  two  spaces\n\nand newlines\ttab",
    "naïve café — 東京 🚀 ₿",
    "The Fed raised rates by 25bp to 5.25%-5.50%.",
    '{"action": "buy", "confidence": 0.7, "reason": "momentum"}',
    "<start_of_turn>user stays text",
    "Ünïcödé\u00a0nbsp and \u200bzero-width",
    "",
    " leading and trailing ",
]

reader = GGUFReader(sys.argv[1])
pieces = reader.fields["tokenizer.ggml.tokens"].contents()
scores = reader.fields["tokenizer.ggml.scores"].contents()
types = reader.fields["tokenizer.ggml.token_type"].contents()

m = pb.ModelProto()
m.trainer_spec.model_type = pb.TrainerSpec.BPE
m.trainer_spec.byte_fallback = True
m.trainer_spec.vocab_size = len(pieces)
m.normalizer_spec.name = "identity"
m.normalizer_spec.add_dummy_prefix = False
m.normalizer_spec.remove_extra_whitespaces = False
m.normalizer_spec.escape_whitespaces = True
kinds = {1: pb.ModelProto.SentencePiece.NORMAL, 2: pb.ModelProto.SentencePiece.UNKNOWN,
         3: pb.ModelProto.SentencePiece.CONTROL, 4: pb.ModelProto.SentencePiece.USER_DEFINED,
         6: pb.ModelProto.SentencePiece.BYTE}
for p, s, t in zip(pieces, scores, types):
    sp = m.pieces.add()
    sp.piece = p
    sp.score = float(s)
    # <unk> must be UNKNOWN for sentencepiece to load the model.
    sp.type = pb.ModelProto.SentencePiece.UNKNOWN if p == "<unk>" else kinds.get(int(t), pb.ModelProto.SentencePiece.NORMAL)
proc = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
out = [{"text": s, "ids": proc.encode(s)} for s in SENTENCES]
json.dump({"source": "sentencepiece %s over the GGUF vocabulary" % spm.__version__, "cases": out},
          open("models/tests/fixtures/gemma_tokens.json", "w"), ensure_ascii=False, indent=1)
for c in out:
    print(repr(c["text"]), c["ids"][:20])

#!/usr/bin/env python3
"""Random-weight cross-encoders of the real architectures, as ONNX, with the real tokenizer layouts.

No cross-encoder's learned weights can be downloaded on the machines this project builds on, so the
reranking code is proven on models that are the real thing except for the weights:

  minilm-l6-h384        BertForSequenceClassification shaped like cross-encoder/ms-marco-MiniLM-L-6-v2
                        (6 layers, hidden 384, 12 heads, FFN 1536, 1 logit), laid out like a
                        Transformers.js export: onnx/model.onnx (fp32) and onnx/model_quantized.onnx (int8)
  tinybert-l2-h128      the same architecture shaped like cross-encoder/ms-marco-TinyBERT-L-2-v2
                        (2 layers, hidden 128, 2 heads, FFN 512, 1 logit), laid out like an optimum export
                        (model.onnx at the root)
  tinybert-l2-h128-2way the TinyBERT shape with a two-logit head (softmax, label 1 = relevant)
  xlmr-l6-h384          XLMRobertaForSequenceClassification (the bge-reranker-base architecture, shaped like
                        mmarco-mMiniLMv2-L6-H384): no token_type_ids input, RoBERTa position ids (offset by
                        the padding id), a RobertaClassificationHead, a SentencePiece Unigram tokenizer
                        with XLM-R's special tokens and <s> A </s></s> B </s> pair template

The graphs are written node by node in the shape PyTorch's exporter gives them (as in the Transformers.js and
optimum exports: the embedder shipped with this project is one): word + position + token-type embeddings and
LayerNorm, N encoder layers of multi-head self-attention with the additive mask (1 - mask) * float32.min, an
erf GELU feed-forward block and post-LayerNorm residuals, then the pooler (first token, dense, tanh) and the
classifier. Inputs are int64 [batch_size, sequence_length] named input_ids, attention_mask and (BERT only)
token_type_ids; the output is float32 logits [batch_size, num_labels]. The int8 variant is made with
onnxruntime's quantize_dynamic, the tool both exporters use (DynamicQuantizeLinear + MatMulInteger).

The BERT tokenizer is the embedder's tokenizer.json (bert-base-uncased WordPiece, the ms-marco models' own
vocabulary) with truncation and padding cleared, as in the cross-encoders' files. The XLM-R tokenizer is built
the way transformers converts XLM-R's sentencepiece model: a Unigram model trained here with sentencepiece
(nmt_nfkc normalization, like XLM-R's), the fairseq id layout <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask>, a
Precompiled + Replace normalizer, a Metaspace pre-tokenizer and the TemplateProcessing post-processor.

Every model directory gets random-weights.json, which the platform reads to say that the weights are random.

Usage: random_rerankers.py --bert-tokenizer PATH --out DIR [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 14
FLOAT32_MIN = float(np.finfo(np.float32).min)


class GraphBuilder:
    """Collects nodes and initializers, naming them the way torch.onnx.export does (/scope/Op_N)."""

    def __init__(self, seed: int):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counts: dict[str, int] = {}
        self.matmuls = 0
        self.rng = np.random.default_rng(seed)

    def _name(self, scope: str, op: str) -> str:
        key = f"{scope}/{op}"
        n = self.counts.get(key, 0)
        self.counts[key] = n + 1
        return key if n == 0 else f"{key}_{n}"

    def op(self, op: str, scope: str, inputs: list[str], outputs: int = 1, **attrs) -> str:
        name = self._name(scope, op)
        outs = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def const(self, scope: str, value, dtype) -> str:
        name = self._name(scope, "Constant")
        out = f"{name}_output_0"
        tensor = numpy_helper.from_array(np.array(value, dtype=dtype), name="")
        self.nodes.append(helper.make_node("Constant", [], [out], name=name, value=tensor))
        return out

    def init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def normal(self, shape, std=0.02) -> np.ndarray:
        return self.rng.normal(0.0, std, size=shape).astype(np.float32)

    # ---- building blocks, as the exporter writes them ------------------------------------------------

    def linear3d(self, scope: str, x: str, fan_in: int, fan_out: int, prefix: str) -> str:
        """nn.Linear on [batch, seq, in]: MatMul with the transposed weight (onnx::MatMul_N), then Add(bias, ·)."""
        self.matmuls += 1
        weight = self.init(f"onnx::MatMul_{1000 + self.matmuls}", self.normal((fan_in, fan_out)))
        bias = self.init(f"{prefix}.bias", self.normal((fan_out,)))
        product = self.op("MatMul", scope, [x, weight])
        return self.op("Add", scope, [bias, product])

    def gemm(self, scope: str, x: str, fan_in: int, fan_out: int, prefix: str, std=0.02) -> str:
        """nn.Linear on [batch, in]: Gemm with transB=1."""
        weight = self.init(f"{prefix}.weight", self.normal((fan_out, fan_in), std))
        bias = self.init(f"{prefix}.bias", self.normal((fan_out,), std))
        return self.op("Gemm", scope, [x, weight, bias], alpha=1.0, beta=1.0, transB=1)

    def layer_norm(self, scope: str, x: str, hidden: int, prefix: str, eps: float) -> str:
        weight = self.init(f"{prefix}.weight", (1.0 + self.normal((hidden,), 0.05)).astype(np.float32))
        bias = self.init(f"{prefix}.bias", self.normal((hidden,)))
        mean = self.op("ReduceMean", scope, [x], axes=[-1])
        centered = self.op("Sub", scope, [x, mean])
        squared = self.op("Pow", scope, [centered, self.const(scope, 2.0, np.float32)])
        variance = self.op("ReduceMean", scope, [squared], axes=[-1])
        std = self.op("Sqrt", scope, [self.op("Add", scope, [variance, self.const(scope, eps, np.float32)])])
        normed = self.op("Div", scope, [centered, std])
        return self.op("Add", scope, [self.op("Mul", scope, [normed, weight]), bias])

    def dims(self, scope: str, x: str, indices: list[int]) -> list[str]:
        """Shape(x)[i] as 1-element tensors (Shape → Gather → Unsqueeze), one Shape per index as torch does."""
        out = []
        for i in indices:
            shape = self.op("Shape", scope, [x])
            value = self.op("Gather", scope, [shape, self.const(scope, i, np.int64)], axis=0)
            out.append(self.op("Unsqueeze", scope, [value, self.const(scope, [0], np.int64)]))
        return out

    def split_heads(self, scope: str, x: str, heads: int, head_dim: int, perm: list[int]) -> str:
        batch, seq = self.dims(scope, x, [0, 1])
        shape = self.op(
            "Concat",
            scope,
            [batch, seq, self.const(scope, [heads], np.int64), self.const(scope, [head_dim], np.int64)],
            axis=0,
        )
        return self.op("Transpose", scope, [self.op("Reshape", scope, [x, shape])], perm=perm)

    def encoder_layer(self, i: int, x: str, mask: str, cfg: dict, base: str, prefix: str) -> str:
        hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
        head_dim = hidden // heads
        eps = cfg["layer_norm_eps"]
        scope = f"{base}/encoder/layer.{i}"
        p = f"{prefix}.encoder.layer.{i}"
        s = f"{scope}/attention/self"
        q = self.linear3d(f"{s}/query", x, hidden, hidden, f"{p}.attention.self.query")
        k = self.linear3d(f"{s}/key", x, hidden, hidden, f"{p}.attention.self.key")
        v = self.linear3d(f"{s}/value", x, hidden, hidden, f"{p}.attention.self.value")
        k = self.split_heads(s, k, heads, head_dim, [0, 2, 3, 1])
        v = self.split_heads(s, v, heads, head_dim, [0, 2, 1, 3])
        q = self.split_heads(s, q, heads, head_dim, [0, 2, 1, 3])
        scores = self.op("MatMul", s, [q, k])
        scores = self.op("Div", s, [scores, self.const(s, math.sqrt(head_dim), np.float32)])
        scores = self.op("Add", s, [scores, mask])
        probs = self.op("Softmax", s, [scores], axis=-1)
        context = self.op("Transpose", s, [self.op("MatMul", s, [probs, v])], perm=[0, 2, 1, 3])
        batch, seq = self.dims(s, context, [0, 1])
        shape = self.op("Concat", s, [batch, seq, self.const(s, [hidden], np.int64)], axis=0)
        context = self.op("Reshape", s, [context, shape])
        o = f"{scope}/attention/output"
        attended = self.linear3d(f"{o}/dense", context, hidden, hidden, f"{p}.attention.output.dense")
        attended = self.layer_norm(
            f"{o}/LayerNorm", self.op("Add", o, [attended, x]), hidden, f"{p}.attention.output.LayerNorm", eps
        )
        inter = cfg["intermediate_size"]
        up = self.linear3d(f"{scope}/intermediate/dense", attended, hidden, inter, f"{p}.intermediate.dense")
        g = f"{scope}/intermediate/intermediate_act_fn"
        erf = self.op("Erf", g, [self.op("Div", g, [up, self.const(g, math.sqrt(2.0), np.float32)])])
        gelu = self.op("Mul", g, [self.op("Mul", g, [up, self.op("Add", g, [erf, self.const(g, 1.0, np.float32)])]),
                                   self.const(g, 0.5, np.float32)])
        down = self.linear3d(f"{scope}/output/dense", gelu, inter, hidden, f"{p}.output.dense")
        return self.layer_norm(
            f"{scope}/output/LayerNorm", self.op("Add", f"{scope}/output", [down, attended]), hidden,
            f"{p}.output.LayerNorm", eps,
        )


def extended_mask(b: GraphBuilder) -> str:
    """(1 - attention_mask[:, None, None, :]) * float32.min, added to every layer's attention scores."""
    m = b.op("Unsqueeze", "", ["attention_mask", b.const("", [1], np.int64)])
    m = b.op("Unsqueeze", "", [m, b.const("", [2], np.int64)])
    m = b.op("Cast", "", [m], to=TensorProto.FLOAT)
    m = b.op("Sub", "", [b.const("", 1.0, np.float32), m])
    return b.op("Mul", "", [m, b.const("", FLOAT32_MIN, np.float32)])


def build_graph(cfg: dict, seed: int) -> onnx.ModelProto:
    """BertForSequenceClassification or XLMRobertaForSequenceClassification, as exported to ONNX."""
    roberta = cfg["model_type"] == "xlm-roberta"
    base, prefix = ("/roberta", "roberta") if roberta else ("/bert", "bert")
    hidden = cfg["hidden_size"]
    b = GraphBuilder(seed)
    mask = extended_mask(b)
    e = f"{base}/embeddings"
    words = b.init(f"{prefix}.embeddings.word_embeddings.weight", b.normal((cfg["vocab_size"], hidden)))
    positions = b.init(
        f"{prefix}.embeddings.position_embeddings.weight", b.normal((cfg["max_position_embeddings"], hidden))
    )
    types = b.init(f"{prefix}.embeddings.token_type_embeddings.weight", b.normal((cfg["type_vocab_size"], hidden)))
    seq = b.dims(e, "input_ids", [1])[0]
    if roberta:
        # create_position_ids_from_input_ids: cumsum over non-padding tokens, offset by padding_idx.
        pad = cfg["pad_token_id"]
        not_pad = b.op("Cast", e, [b.op("Not", e, [b.op("Equal", e, ["input_ids", b.const(e, pad, np.int64)])])],
                       to=TensorProto.INT32)
        cumsum = b.op("CumSum", e, [not_pad, b.const(e, 1, np.int64)])
        incremental = b.op("Mul", e, [b.op("Cast", e, [cumsum], to=TensorProto.INT32), not_pad])
        position_ids = b.op("Add", e, [b.op("Cast", e, [incremental], to=TensorProto.INT64),
                                       b.const(e, pad, np.int64)])
        # No token_type_ids input: the registered all-zero buffer, sliced and expanded.
        buffer = b.init(f"{prefix}.embeddings.token_type_ids",
                        np.zeros((1, cfg["max_position_embeddings"]), dtype=np.int64))
        sliced = b.op("Slice", e, [buffer, b.const(e, [0], np.int64), seq, b.const(e, [1], np.int64),
                                   b.const(e, [1], np.int64)])
        batch = b.dims(e, "input_ids", [0])[0]
        token_type_ids = b.op("Expand", e, [sliced, b.op("Concat", e, [batch, seq], axis=0)])
    else:
        buffer = b.init(f"{prefix}.embeddings.position_ids",
                        np.arange(cfg["max_position_embeddings"], dtype=np.int64)[None, :])
        position_ids = b.op("Slice", e, [buffer, b.const(e, [0], np.int64), seq, b.const(e, [1], np.int64),
                                         b.const(e, [1], np.int64)])
        token_type_ids = "token_type_ids"
    x = b.op("Gather", f"{e}/word_embeddings", [words, "input_ids"])
    x = b.op("Add", e, [x, b.op("Gather", f"{e}/token_type_embeddings", [types, token_type_ids])])
    x = b.op("Add", e, [x, b.op("Gather", f"{e}/position_embeddings", [positions, position_ids])])
    x = b.layer_norm(f"{e}/LayerNorm", x, hidden, f"{prefix}.embeddings.LayerNorm", cfg["layer_norm_eps"])
    for i in range(cfg["num_hidden_layers"]):
        x = b.encoder_layer(i, x, mask, cfg, base, prefix)

    labels = cfg["num_labels"]
    # The head reads the first token ([CLS] / <s>); a larger std than BERT's init spreads the random scores.
    if roberta:
        first = b.op("Gather", "/classifier", [x, b.const("/classifier", 0, np.int64)], axis=1)
        pooled = b.op("Tanh", "/classifier", [b.gemm("/classifier/dense", first, hidden, hidden, "classifier.dense")])
        logits = b.gemm("/classifier/out_proj", pooled, hidden, labels, "classifier.out_proj", std=0.5)
    else:
        first = b.op("Gather", f"{base}/pooler", [x, b.const(f"{base}/pooler", 0, np.int64)], axis=1)
        dense = b.gemm(f"{base}/pooler/dense", first, hidden, hidden, f"{prefix}.pooler.dense")
        pooled = b.op("Tanh", f"{base}/pooler/activation", [dense])
        logits = b.gemm("/classifier", pooled, hidden, labels, "classifier", std=0.5)
    b.nodes[-1].output[0] = "logits"

    dims = ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims)]
    if not roberta:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, dims))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", labels])]
    graph = helper.make_graph(b.nodes, "main_graph", inputs, outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pytorch")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---- tokenizers --------------------------------------------------------------------------------------

def bert_tokenizer_files(source: str, out: str, max_length: int) -> None:
    """The bert-base-uncased WordPiece tokenizer.json, as the ms-marco cross-encoders ship it."""
    with open(source, encoding="utf-8") as f:
        tokenizer = json.load(f)
    tokenizer["truncation"] = None
    tokenizer["padding"] = None
    write_json(os.path.join(out, "tokenizer.json"), tokenizer)
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": max_length,
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
        "mask_token": "[MASK]",
    })
    write_json(os.path.join(out, "special_tokens_map.json"), {
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
        "mask_token": "[MASK]",
    })


def training_corpus(bert_tokenizer: str, path: str, seed: int) -> None:
    """English-like text for sentencepiece: whole words of BERT's vocabulary, Zipf-weighted by their rank."""
    with open(bert_tokenizer, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    words = [w for w, _ in sorted(vocab.items(), key=lambda item: item[1])
             if w.isalpha() and not w.startswith("[") and len(w) > 1]
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    lengths = rng.integers(5, 25, size=20000)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    with open(path, "w", encoding="utf-8") as f:
        start = 0
        for length in lengths:
            text = " ".join(words[i] for i in picks[start:start + length])
            start += length
            f.write(text[0].upper() + text[1:] + ".\n")


def xlmr_tokenizer_files(bert_tokenizer: str, out: str, vocab_size: int, max_length: int, seed: int) -> int:
    """An XLM-R-layout tokenizer.json; returns its vocabulary size."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    with tempfile.TemporaryDirectory() as scratch:
        corpus = os.path.join(scratch, "corpus.txt")
        training_corpus(bert_tokenizer, corpus, seed)
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(scratch, "spm"), vocab_size=vocab_size - 2,
            model_type="unigram", normalization_rule_name="nmt_nfkc", character_coverage=1.0,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, seed_sentencepiece_size=200000,
            minloglevel=2,
        )
        proto = sentencepiece_model_pb2.ModelProto()
        with open(os.path.join(scratch, "spm.model"), "rb") as f:
            proto.ParseFromString(f.read())

    # transformers' XLMRobertaConverter: fairseq ids first, sentencepiece's own <unk> <s> </s> dropped.
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(piece.piece, piece.score) for piece in proto.pieces[3:]]
    vocab += [("<mask>", 0.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.add_special_tokens([
        AddedToken("<s>", normalized=False, special=True), AddedToken("<pad>", normalized=False, special=True),
        AddedToken("</s>", normalized=False, special=True), AddedToken("<unk>", normalized=False, special=True),
        AddedToken("<mask>", lstrip=True, normalized=False, special=True),
    ])
    tokenizer.save(os.path.join(out, "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    write_json(os.path.join(out, "tokenizer_config.json"),
               {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": max_length, **specials})
    write_json(os.path.join(out, "special_tokens_map.json"), specials)
    return tokenizer.get_vocab_size()


# ---- models ------------------------------------------------------------------------------------------

BERT_VOCAB = 30522

MODELS = {
    "minilm-l6-h384": {"shape_of": "cross-encoder/ms-marco-MiniLM-L-6-v2", "layout": "transformers.js",
                       "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6,
                       "num_attention_heads": 12, "intermediate_size": 1536, "num_labels": 1, "int8": True},
    "tinybert-l2-h128": {"shape_of": "cross-encoder/ms-marco-TinyBERT-L-2-v2", "layout": "optimum",
                         "model_type": "bert", "hidden_size": 128, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "intermediate_size": 512, "num_labels": 1},
    "tinybert-l2-h128-2way": {"shape_of": "cross-encoder/ms-marco-TinyBERT-L-2-v2 with a two-label head",
                              "layout": "optimum", "model_type": "bert", "hidden_size": 128,
                              "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512,
                              "num_labels": 2},
    "xlmr-l6-h384": {"shape_of": "BAAI/bge-reranker-base's architecture at mmarco-mMiniLMv2-L6-H384's size",
                     "layout": "optimum", "model_type": "xlm-roberta", "hidden_size": 384,
                     "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
                     "num_labels": 1, "tokenizer_vocab": 8000},
}


def write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def build_model(name: str, spec: dict, bert_tokenizer: str, out_dir: str, seed: int) -> None:
    target = os.path.join(out_dir, name)
    scratch = f"{target}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    roberta = spec["model_type"] == "xlm-roberta"
    if roberta:
        vocab_size = xlmr_tokenizer_files(bert_tokenizer, scratch, spec["tokenizer_vocab"], 512, seed)
        # XLM-R positions start after the padding id: 512 usable positions need 514 rows.
        extra = {"vocab_size": vocab_size, "max_position_embeddings": 514, "type_vocab_size": 1,
                 "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5,
                 "architectures": ["XLMRobertaForSequenceClassification"]}
    else:
        bert_tokenizer_files(bert_tokenizer, scratch, 512)
        extra = {"vocab_size": BERT_VOCAB, "max_position_embeddings": 512, "type_vocab_size": 2,
                 "pad_token_id": 0, "layer_norm_eps": 1e-12, "architectures": ["BertForSequenceClassification"]}
    labels = spec["num_labels"]
    cfg = {
        "_name_or_path": f"random-{name}", "model_type": spec["model_type"], "hidden_size": spec["hidden_size"],
        "num_hidden_layers": spec["num_hidden_layers"], "num_attention_heads": spec["num_attention_heads"],
        "intermediate_size": spec["intermediate_size"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "position_embedding_type": "absolute",
        "id2label": {str(i): f"LABEL_{i}" for i in range(labels)},
        "label2id": {f"LABEL_{i}": i for i in range(labels)}, **extra,
    }
    write_json(os.path.join(scratch, "config.json"), cfg)
    model = build_graph({**cfg, "num_labels": labels}, seed)
    onnx_dir = os.path.join(scratch, "onnx") if spec["layout"] == "transformers.js" else scratch
    os.makedirs(onnx_dir, exist_ok=True)
    fp32 = os.path.join(onnx_dir, "model.onnx")
    onnx.save(model, fp32)
    if spec.get("int8"):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(fp32, os.path.join(onnx_dir, "model_quantized.onnx"), per_channel=True,
                         reduce_range=True, weight_type=QuantType.QInt8)
    write_json(os.path.join(scratch, "random-weights.json"), {
        "randomWeights": True, "seed": seed, "architecture": cfg["architectures"][0], "shapeOf": spec["shape_of"],
        "layout": spec["layout"],
        "note": "Random weights: the scores carry no relevance; the architecture, inputs, outputs, tokenizer "
                "and cost are those of the real model.",
    })
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bert-tokenizer", required=True, help="bert-base-uncased tokenizer.json")
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for index, name in enumerate(args.only or MODELS):
        build_model(name, MODELS[name], args.bert_tokenizer, args.out, args.seed + index)
        print(f"built {name}", flush=True)


if __name__ == "__main__":
    main()

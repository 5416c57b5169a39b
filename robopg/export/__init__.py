"""Export: a trained policy out of its checkpoint into a file a robot runs, verified before it is written.

``to_onnx``: the deterministic policy (normalizer, actor, action scaling) as an ONNX graph with the metadata
a robot checks, compared with torch on observations from the task.
"""

from robopg.export.to_onnx import OPSET, TOLERANCE, ExportReport, export_policy, write_onnx

__all__ = ["OPSET", "TOLERANCE", "ExportReport", "export_policy", "write_onnx"]

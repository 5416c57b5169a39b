"""Export: a trained policy out of its checkpoint into a file a robot runs, verified before it is written.

``to_onnx``: the deterministic policy (normalizer, actor, action scaling) as an ONNX graph with the metadata
a robot checks, compared with torch on observations from the task.
``to_c``: the same policy as float32 C for a microcontroller, compared with onnxruntime on the same observations.
"""

from robopg.export.to_c import CExportReport, export_c, write_c
from robopg.export.to_onnx import OPSET, TOLERANCE, ExportReport, export_policy, write_onnx

__all__ = ["OPSET", "TOLERANCE", "CExportReport", "ExportReport", "export_c", "export_policy", "write_c",
           "write_onnx"]

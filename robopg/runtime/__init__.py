"""The on-robot runtime: numpy, onnxruntime and the serial link only (no torch, no pybullet).

``onnx_policy``: an exported policy under onnxruntime; ``safety``: the layer between policy and actuators;
``deploy``: the fixed-rate control loop over the link; ``episode``: what one episode on the robot records.
"""

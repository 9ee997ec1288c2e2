"""Exporters from the torch suite to runtime formats (``export`` extra): ONNX and LiteRT."""

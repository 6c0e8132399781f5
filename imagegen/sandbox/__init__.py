"""A local server speaking APIXO's GPT Image 2 protocol (standard library and Pillow only).

See docs/sandbox.md for its flags and the prompt markers that steer it.
"""

from .markers import parse_markers
from .server import SandboxConfig, SandboxServer

__all__ = ["SandboxConfig", "SandboxServer", "parse_markers"]

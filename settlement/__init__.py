"""Real-time settlement engine for China's basic medical insurance.

The package holds the domain: money parsing, rule loading and compilation, the Cython
kernel (``settlement._core``) and its Python wrapper, the pure-Python reference model
used to check the kernel, and the interface types. It never imports ``adapters``.
"""

__version__ = "0.1.0"

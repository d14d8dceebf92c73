"""LogME (You et al., ICML 2021; JMLR 2022) as a Hugging Face evaluate metric; see README.md.

The implementation is in the hf-logme package; this file is what evaluate.load imports.
"""

from hf_logme.metric import Logme  # From: hf-logme

__all__ = ["Logme"]

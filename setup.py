"""Build the optional C core of BPE training; all metadata lives in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the pure-Python
`scratchlm.tokenizer.bpe.learn_merges` is used instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scratchlm.tokenizer._bpe_core",
            ["src/scratchlm/tokenizer/_bpe_core.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)

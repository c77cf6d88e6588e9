"""Our own on-disk formats: model and classifier directories, tokenizer directories, and reading training
checkpoints. Other tools' formats, which these loaders also accept, are in `scratchlm.interop`."""

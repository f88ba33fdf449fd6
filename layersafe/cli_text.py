"""Help texts shared by every subcommand's parser (``layersafe.cli`` and the subcommand modules
beside their pipeline stages): a neutral module, so those modules do not import the CLI."""

ALLOW_PICKLE_HELP = ("also load pickle weights (pytorch_model.bin), which can run code when loaded; "
                     "default: safetensors only (judges: add allow_pickle=1 to the judge spec)")
EPILOG = "Layer numbers index the image encoder's hidden_states: 0 = patch embeddings, l = output of block l."

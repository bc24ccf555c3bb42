"""streamgrad: online training of recurrent networks on long streams with exact gradients."""

__version__ = "0.1.0"

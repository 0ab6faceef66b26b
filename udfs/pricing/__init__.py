"""Rating: one module per price model, each a pure `price(quantity, spec) -> Priced` over exact decimals."""

"""Export and import writers/readers, one module per annotation format."""

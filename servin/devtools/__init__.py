"""Developer tools shipped with Servin: code generation and the bundled test image."""

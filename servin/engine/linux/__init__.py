"""engine/linux"""

"""engine/images"""

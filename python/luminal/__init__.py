"""luminal"""

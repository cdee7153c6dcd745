"""Portail — identity hub and common entry portal of En commun."""

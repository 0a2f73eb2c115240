"""dmsim.cards"""

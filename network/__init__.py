"""dmsim.network"""

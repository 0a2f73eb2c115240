"""dmsim.network.dm"""

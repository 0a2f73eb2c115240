"""dmsim.devices"""

"""dmsim.network.sms"""

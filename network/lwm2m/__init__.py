"""dmsim.network.lwm2m: OMA LwM2M 1.0 with the channel security of seed 004.

Sans-IO cores: the object and resource definitions (``objects``), the OMA-TLV content format
(``tlv``), DTLS 1.2 endpoints and the seed's suite rules (``dtls``, ``dtls_policy``), the SMS
binding's secured packets (``sms_security``, ``sms_binding``), the bootstrap server and the server.
"""

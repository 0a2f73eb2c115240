"""dmsim.network.gba: the Generic Bootstrapping Architecture (3GPP TS 33.220, TS 33.223, TS 24.109).

Sans-IO cores: ``keys`` (every GBA key derivation), ``hss`` + ``hss_store`` (subscribers, AVs,
SQN), ``digest_aka`` (RFC 3310 HTTP Digest AKAv1-MD5), ``bsf`` (Ub and Zn), ``ub_client`` (the
UE side of Ub), ``push`` (GBA Push: Zpn and the GPI).
"""

"""Address validation reasons name the chain an address seems to belong to."""

from alertlab.ingest.chains import validate_address

SOL = "2bNQko1C2wYfexfe9MBnd7SwwaQC6vyEXdhMkhBWEN4d"
EVM = "0x02c29be7cc318fb958b763d9af9b9e06fc474444"


def test_reason_hints_at_the_likely_chain():
    assert validate_address("solana", SOL) is None and validate_address("bsc", EVM) is None
    assert (
        validate_address("bsc", SOL)
        == "invalid bsc address (EVM: 0x + 40 hex); it looks like a solana address"
    )
    assert validate_address("solana", EVM) == "invalid solana address; it looks like an evm address"
    assert validate_address("ethereum", "0x123") == "invalid ethereum address (EVM: 0x + 40 hex)"

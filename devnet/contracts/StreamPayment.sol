// SPDX-License-Identifier: GPL-3.0-or-later
// Copyright (c) golem.vm contributors
pragma solidity ^0.8.20;

/// @title StreamPayment for the local Golem network
/// @notice Pays a provider (recipient) by the second out of a requestor's (sender's) deposit of native ETH.
/// Written for the devnet to the interface of the PyPI package golem-streaming-abi 0.1.1, which is what
/// golem-vm-provider 0.1.63 and request-vm-on-golem 0.1.58 call on the 0.1.x network: payable
/// createStream(token, recipient, deposit, ratePerSecond), topUp, withdraw, terminate and the 9-field
/// streams(id). Only native ETH (token == address(0)) is supported; an ERC-20 stream reverts.
///
/// Where this contract reads differently from upstream's 0.1.x contract, on purpose:
/// - terminate() also clamps stopTime to the block time and sets withdrawn to what vested. Upstream only
///   zeroes recipient, and the provider's stream monitor looks at stopTime and halted, never at recipient,
///   so upstream's terminated stream keeps its VM running until the original stopTime.
/// - topUp() extends stopTime from the old stopTime and only while the stream runs. Upstream extends an
///   ended stream from the block time, which vests the gap at once and breaks deposit = rate * duration.
contract StreamPayment {
    struct Stream {
        address token;          // always address(0): native ETH
        address sender;         // the requestor who deposited
        address recipient;      // the provider; address(0) once terminated
        uint128 startTime;
        uint128 stopTime;       // startTime + deposit / ratePerSecond, later moved by topUp, halt, terminate
        uint128 ratePerSecond;  // wei a second
        uint256 deposit;        // all wei paid in (create plus top-ups)
        uint256 withdrawn;      // wei paid out to the recipient so far
        bool halted;            // set by the oracle; vesting stopped at that moment
    }

    /// @notice The only address allowed to halt a stream (the devnet deploys with its own dev account).
    address public immutable oracle;
    /// @notice The id of the last stream created; ids start at 1, so 0 never names a stream.
    uint256 public nextStreamId;
    /// @notice Unknown ids read as all zeros: recipient address(0), which providers report as a mismatch.
    mapping(uint256 => Stream) public streams;

    uint256 private _lock = 1;

    event StreamCreated(uint256 indexed streamId, address indexed sender, address indexed recipient, address token,
                        uint256 deposit, uint256 ratePerSecond, uint256 startTime, uint256 stopTime);
    event Withdraw(uint256 indexed streamId, address indexed recipient, uint256 amount);
    event Terminated(uint256 indexed streamId, uint256 senderRefund, uint256 recipientPayout);
    event Halted(uint256 indexed streamId);
    event ToppedUp(uint256 indexed streamId, uint256 amount, uint128 newStopTime);

    /// Every function that sends ETH is guarded, so a recipient's or sender's fallback cannot re-enter
    /// any of them while the books are half written.
    modifier nonReentrant() {
        require(_lock == 1, "reentrant call");
        _lock = 2;
        _;
        _lock = 1;
    }

    constructor(address oracle_) {
        require(oracle_ != address(0), "oracle=0");
        oracle = oracle_;
    }

    function createStream(address token, address recipient, uint256 deposit, uint128 ratePerSecond)
        external payable nonReentrant returns (uint256 streamId)
    {
        require(token == address(0), "erc20 streams unsupported");
        require(recipient != address(0), "recipient=0");
        require(deposit > 0, "deposit=0");
        require(ratePerSecond > 0, "rate=0");
        require(msg.value == deposit, "value != deposit");
        uint256 duration = deposit / ratePerSecond;
        require(duration > 0, "duration=0");
        uint256 stop = block.timestamp + duration;
        require(stop <= type(uint128).max, "duration too long");

        streamId = ++nextStreamId;
        streams[streamId] = Stream({
            token: address(0),
            sender: msg.sender,
            recipient: recipient,
            startTime: uint128(block.timestamp),
            stopTime: uint128(stop),
            ratePerSecond: ratePerSecond,
            deposit: deposit,
            withdrawn: 0,
            halted: false
        });
        emit StreamCreated(streamId, msg.sender, recipient, address(0), deposit, ratePerSecond, block.timestamp, stop);
    }

    /// @notice Pays the recipient what has vested and not been paid yet.
    function withdraw(uint256 streamId) external nonReentrant {
        Stream storage s = _live(streamId);
        require(msg.sender == s.recipient, "not recipient");
        uint256 amount = _vested(s) - s.withdrawn;
        require(amount > 0, "nothing to withdraw");
        s.withdrawn += amount;
        emit Withdraw(streamId, s.recipient, amount);
        _pay(s.recipient, amount);
    }

    /// @notice Ends the stream: the recipient gets what vested and is unpaid, the sender the rest.
    /// Afterwards streams(id) reads recipient address(0), stopTime <= now and withdrawn == vested, so a
    /// provider sees the stream as over (runway 0) and a second terminate or withdraw reverts.
    function terminate(uint256 streamId) external nonReentrant {
        Stream storage s = _live(streamId);
        address sender = s.sender;
        address recipient = s.recipient;
        require(msg.sender == sender || msg.sender == recipient, "not authorized");
        uint256 vested = _vested(s);
        uint256 payout = vested - s.withdrawn;
        uint256 refund = s.deposit - vested;

        s.recipient = address(0);
        s.withdrawn = vested;
        if (block.timestamp < s.stopTime) {
            s.stopTime = uint128(block.timestamp);
        }
        emit Terminated(streamId, refund, payout);
        if (payout > 0) _pay(recipient, payout);
        if (refund > 0) _pay(sender, refund);
    }

    /// @notice Emergency stop by the oracle: vesting ends now; the parties can still withdraw or terminate.
    function haltStream(uint256 streamId) external {
        require(msg.sender == oracle, "not oracle");
        Stream storage s = _live(streamId);
        if (s.halted) return;
        s.halted = true;
        if (block.timestamp < s.stopTime) {
            s.stopTime = uint128(block.timestamp);
        }
        emit Halted(streamId);
    }

    /// @notice Adds `amount` (sent as value) to a running stream; stopTime moves by amount / ratePerSecond.
    /// A remainder below one second's rate stays in the deposit and is refunded on terminate.
    function topUp(uint256 streamId, uint256 amount) external payable nonReentrant {
        Stream storage s = _live(streamId);
        require(msg.sender == s.sender, "not sender");
        require(!s.halted, "halted");
        require(block.timestamp < s.stopTime, "stream ended");
        require(amount > 0, "amount=0");
        require(msg.value == amount, "value != amount");
        uint256 delta = amount / s.ratePerSecond;
        require(delta > 0, "amount below one second");
        uint256 stop = uint256(s.stopTime) + delta;
        require(stop <= type(uint128).max, "duration too long");
        s.deposit += amount;
        s.stopTime = uint128(stop);
        emit ToppedUp(streamId, amount, uint128(stop));
    }

    function _live(uint256 streamId) private view returns (Stream storage s) {
        s = streams[streamId];
        // Unknown ids have no sender; terminated ones have no recipient.
        require(s.recipient != address(0), "no stream");
    }

    function _vested(Stream storage s) private view returns (uint256) {
        uint256 end = block.timestamp < s.stopTime ? block.timestamp : s.stopTime;
        if (end <= s.startTime) return 0;
        uint256 vested = (end - s.startTime) * s.ratePerSecond;
        return vested < s.deposit ? vested : s.deposit;
    }

    function _pay(address to, uint256 amount) private {
        (bool ok, ) = payable(to).call{value: amount}("");
        require(ok, "eth transfer failed");
    }
}

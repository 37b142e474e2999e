// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice Test-only: the floor an anchor cannot go below, a transaction that only emits Anchored.
contract EventOnly {
    event Anchored(uint256 indexed anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp);

    uint256 private _count;

    function anchor(uint64 treeSize, bytes32 rootHash, bytes32[] calldata) external {
        emit Anchored(++_count, treeSize, rootHash, uint64(block.timestamp));
    }
}

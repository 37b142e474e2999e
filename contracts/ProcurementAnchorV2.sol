// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IProcurementAnchorV2} from "./IProcurementAnchorV2.sol";
import {ProcurementAnchorRoles} from "./ProcurementAnchorRoles.sol";
import {RFC9162} from "./RFC9162.sol";

/**
 * @title ProcurementAnchorV2
 * @notice Holds the anchored checkpoints of one Tenderproof log. Each new checkpoint must
 * come with an RFC 9162 consistency proof from the latest anchored one, verified here with
 * the SHA-256 precompile: a history that does not extend the anchored one is refused.
 *
 * Version 2 stores one slot per checkpoint (its root, by tree size) where version 1 stored
 * two (root and block timestamp): an anchor's time is the timestamp of the block holding its
 * {Anchored} event. The latest anchor's id, size and time share one slot, rewritten by each
 * anchor. Anchorers are managed by a single admin (two-step transfer). There is no upgrade
 * path and no way to remove or replace an anchored checkpoint.
 */
contract ProcurementAnchorV2 is IProcurementAnchorV2, ProcurementAnchorRoles {
    /// @dev The latest anchor, packed in one slot.
    struct Head {
        uint64 anchorId;
        uint64 treeSize;
        uint64 timestamp;
    }

    mapping(uint64 treeSize => bytes32 rootHash) private _roots;
    Head private _head;

    /**
     * @param initialAdmin The account that manages anchorers; it is also made an anchorer.
     */
    constructor(address initialAdmin) ProcurementAnchorRoles(initialAdmin) {}

    /// @inheritdoc IProcurementAnchorV2
    function anchor(uint64 treeSize, bytes32 rootHash, bytes32[] calldata consistencyProof) external {
        if (!_anchorers[msg.sender]) revert ProcurementAnchorUnauthorized(msg.sender);
        // The Head slot read and written as one word (anchorId | treeSize << 64 | timestamp << 128),
        // the layout of the struct, without a copy of it in memory.
        uint256 packed;
        assembly ("memory-safe") {
            packed := sload(_head.slot)
        }
        uint64 latestSize = uint64(packed >> 64);
        if (treeSize <= latestSize) revert ProcurementAnchorTreeSizeNotIncreasing(latestSize, treeSize);
        bytes32 latestRoot = _roots[latestSize];
        if (!RFC9162.isConsistent(latestSize, treeSize, latestRoot, rootHash, consistencyProof)) {
            revert ProcurementAnchorInconsistentCheckpoint(latestSize, latestRoot, treeSize, rootHash);
        }
        uint64 timestamp = uint64(block.timestamp);
        // Cannot overflow: one id per transaction, far below 2**64.
        uint64 anchorId;
        unchecked {
            anchorId = uint64(packed) + 1;
        }
        _roots[treeSize] = rootHash;
        packed = uint256(anchorId) | (uint256(treeSize) << 64) | (uint256(timestamp) << 128);
        assembly ("memory-safe") {
            sstore(_head.slot, packed)
        }
        emit Anchored(anchorId, treeSize, rootHash, timestamp);
    }

    /// @inheritdoc IProcurementAnchorV2
    function latest() external view returns (uint256 anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp) {
        Head memory head = _head;
        return (head.anchorId, head.treeSize, _roots[head.treeSize], head.timestamp);
    }

    /// @inheritdoc IProcurementAnchorV2
    function rootAt(uint64 treeSize) external view returns (bytes32 rootHash) {
        return _roots[treeSize];
    }

    /// @inheritdoc IProcurementAnchorV2
    function verifyInclusion(uint64 treeSize, uint64 leafIndex, bytes32 leafHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 anchored = _roots[treeSize];
        if (anchored == bytes32(0)) return false;
        (bool ok, bytes32 root) = RFC9162.rootFromInclusionProof(leafIndex, treeSize, leafHash, proof);
        return ok && root == anchored;
    }

    /// @inheritdoc IProcurementAnchorV2
    function interfaceVersion() external pure returns (uint256) {
        return 2;
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IProcurementAnchor} from "./IProcurementAnchor.sol";
import {ProcurementAnchorRoles} from "./ProcurementAnchorRoles.sol";
import {RFC9162} from "./RFC9162.sol";

/**
 * @title ProcurementAnchor
 * @notice Holds the anchored checkpoints of one Tenderproof log. Each new checkpoint must
 * come with an RFC 9162 consistency proof from the latest anchored one, verified here with
 * the SHA-256 precompile: a history that does not extend the anchored one is refused.
 *
 * Anchorers are managed by a single admin (two-step transfer). There is no upgrade path
 * and no way to remove or replace an anchored checkpoint.
 */
contract ProcurementAnchor is IProcurementAnchor, ProcurementAnchorRoles {
    /// @dev An anchored checkpoint, by tree size: two storage slots.
    struct Checkpoint {
        bytes32 rootHash;
        uint64 timestamp;
    }

    /// @dev The latest anchor, packed in one slot.
    struct Head {
        uint64 anchorId;
        uint64 treeSize;
        uint64 timestamp;
    }

    mapping(uint64 treeSize => Checkpoint) private _checkpoints;
    Head private _head;

    /**
     * @param initialAdmin The account that manages anchorers; it is also made an anchorer.
     */
    constructor(address initialAdmin) ProcurementAnchorRoles(initialAdmin) {}

    /// @inheritdoc IProcurementAnchor
    function anchor(uint64 treeSize, bytes32 rootHash, bytes32[] calldata consistencyProof) external {
        if (!_anchorers[msg.sender]) revert ProcurementAnchorUnauthorized(msg.sender);
        Head memory head = _head;
        if (treeSize <= head.treeSize) revert ProcurementAnchorTreeSizeNotIncreasing(head.treeSize, treeSize);
        bytes32 latestRoot = _checkpoints[head.treeSize].rootHash;
        if (!RFC9162.verifyConsistency(head.treeSize, treeSize, latestRoot, rootHash, consistencyProof)) {
            revert ProcurementAnchorInconsistentCheckpoint(head.treeSize, latestRoot, treeSize, rootHash);
        }
        uint64 timestamp = uint64(block.timestamp);
        // Cannot overflow: one id per transaction, far below 2**64.
        uint64 anchorId;
        unchecked {
            anchorId = head.anchorId + 1;
        }
        _checkpoints[treeSize] = Checkpoint({rootHash: rootHash, timestamp: timestamp});
        _head = Head({anchorId: anchorId, treeSize: treeSize, timestamp: timestamp});
        emit Anchored(anchorId, treeSize, rootHash, timestamp);
    }

    /// @inheritdoc IProcurementAnchor
    function latest() external view returns (uint256 anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp) {
        Head memory head = _head;
        return (head.anchorId, head.treeSize, _checkpoints[head.treeSize].rootHash, head.timestamp);
    }

    /// @inheritdoc IProcurementAnchor
    function rootAt(uint64 treeSize) external view returns (bytes32 rootHash, uint64 timestamp) {
        Checkpoint storage checkpoint = _checkpoints[treeSize];
        return (checkpoint.rootHash, checkpoint.timestamp);
    }

    /// @inheritdoc IProcurementAnchor
    function verifyInclusion(uint64 treeSize, uint64 leafIndex, bytes32 leafHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 anchored = _checkpoints[treeSize].rootHash;
        if (anchored == bytes32(0)) return false;
        (bool ok, bytes32 root) = RFC9162.rootFromInclusionProof(leafIndex, treeSize, leafHash, proof);
        return ok && root == anchored;
    }
}

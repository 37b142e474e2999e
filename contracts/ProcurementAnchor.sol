// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IProcurementAnchor} from "./IProcurementAnchor.sol";
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
contract ProcurementAnchor is IProcurementAnchor {
    /// @notice The caller is not an anchorer.
    error ProcurementAnchorUnauthorized(address account);
    /// @notice The caller is not the admin.
    error ProcurementAnchorNotAdmin(address account);
    /// @notice The caller is not the pending admin.
    error ProcurementAnchorNotPendingAdmin(address account);
    /// @notice The zero address cannot be the admin or an anchorer.
    error ProcurementAnchorZeroAddress();
    /// @notice The tree size is not larger than the latest anchored one.
    error ProcurementAnchorTreeSizeNotIncreasing(uint64 latestTreeSize, uint64 treeSize);
    /// @notice The consistency proof does not link the latest anchored checkpoint to the new one.
    error ProcurementAnchorInconsistentCheckpoint(uint64 latestTreeSize, bytes32 latestRootHash, uint64 treeSize, bytes32 rootHash);

    /// @notice `account` may now anchor checkpoints.
    event AnchorerGranted(address indexed account, address indexed admin);
    /// @notice `account` may no longer anchor checkpoints.
    event AnchorerRevoked(address indexed account, address indexed admin);
    /// @notice The admin proposed `newAdmin` as its successor.
    event AdminTransferStarted(address indexed previousAdmin, address indexed newAdmin);
    /// @notice `newAdmin` accepted and is now the admin.
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);

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

    address private _admin;
    address private _pendingAdmin;
    mapping(address account => bool) private _anchorers;
    mapping(uint64 treeSize => Checkpoint) private _checkpoints;
    Head private _head;

    /**
     * @param initialAdmin The account that manages anchorers; it is also made an anchorer.
     */
    constructor(address initialAdmin) {
        if (initialAdmin == address(0)) revert ProcurementAnchorZeroAddress();
        _admin = initialAdmin;
        emit AdminTransferred(address(0), initialAdmin);
        _anchorers[initialAdmin] = true;
        emit AnchorerGranted(initialAdmin, initialAdmin);
    }

    modifier onlyAdmin() {
        if (msg.sender != _admin) revert ProcurementAnchorNotAdmin(msg.sender);
        _;
    }

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

    /**
     * @notice Allow `account` to anchor checkpoints. Only the admin.
     * @dev Emits {AnchorerGranted}; granting an anchorer again is a no-op without an event.
     */
    function grantAnchorer(address account) external onlyAdmin {
        if (account == address(0)) revert ProcurementAnchorZeroAddress();
        if (_anchorers[account]) return;
        _anchorers[account] = true;
        emit AnchorerGranted(account, msg.sender);
    }

    /**
     * @notice Stop `account` from anchoring checkpoints. Only the admin.
     * @dev Emits {AnchorerRevoked}; revoking a non-anchorer is a no-op without an event.
     */
    function revokeAnchorer(address account) external onlyAdmin {
        if (!_anchorers[account]) return;
        _anchorers[account] = false;
        emit AnchorerRevoked(account, msg.sender);
    }

    /// @notice Whether `account` may anchor checkpoints.
    function isAnchorer(address account) external view returns (bool) {
        return _anchorers[account];
    }

    /// @notice The admin, who manages anchorers.
    function admin() external view returns (address) {
        return _admin;
    }

    /// @notice The account proposed as the next admin, if any.
    function pendingAdmin() external view returns (address) {
        return _pendingAdmin;
    }

    /**
     * @notice Propose `newAdmin` as the next admin; it takes over when it calls {acceptAdmin}.
     * @dev Only the admin. Emits {AdminTransferStarted}. Proposing the zero address cancels.
     */
    function transferAdmin(address newAdmin) external onlyAdmin {
        _pendingAdmin = newAdmin;
        emit AdminTransferStarted(msg.sender, newAdmin);
    }

    /**
     * @notice Become the admin. Only the pending admin.
     * @dev Emits {AdminTransferred}. Anchorers are unchanged.
     */
    function acceptAdmin() external {
        if (msg.sender != _pendingAdmin || msg.sender == address(0)) revert ProcurementAnchorNotPendingAdmin(msg.sender);
        address previous = _admin;
        _admin = msg.sender;
        _pendingAdmin = address(0);
        emit AdminTransferred(previous, msg.sender);
    }
}

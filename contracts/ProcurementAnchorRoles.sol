// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @title ProcurementAnchorRoles
 * @notice What every version of the anchor contract shares: its custom errors, and the anchorers
 * managed by a single admin (two-step transfer). Storage: the admin, the pending admin and the
 * anchorers, in the first three slots of every version.
 */
abstract contract ProcurementAnchorRoles {
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

    address private _admin;
    address private _pendingAdmin;
    mapping(address account => bool) internal _anchorers;

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

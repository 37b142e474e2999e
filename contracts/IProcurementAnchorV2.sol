// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @title IProcurementAnchorV2
 * @notice Anchored checkpoints of a Tenderproof log (an RFC 9162 Merkle log), version 2. As in
 * version 1, a new checkpoint is accepted only with a consistency proof from the latest anchored
 * one. Unlike version 1, the contract keeps no time per checkpoint: an anchor's time is the
 * timestamp of the block holding its {Anchored} event (the event carries it too), so a verifier
 * takes it from that block, found through the anchoring transaction's receipt.
 */
interface IProcurementAnchorV2 {
    /// @notice A checkpoint was anchored; `timestamp` is the timestamp of the block holding this event.
    event Anchored(uint256 indexed anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp);

    /**
     * @notice Anchor the checkpoint (`treeSize`, `rootHash`).
     * @dev Reverts unless the caller is an anchorer, `treeSize` is larger than the latest
     * anchored size, and `consistencyProof` is an RFC 9162 §2.1.4 proof that the new tree
     * extends the latest anchored one (empty for the first anchor).
     */
    function anchor(uint64 treeSize, bytes32 rootHash, bytes32[] calldata consistencyProof) external;

    /// @notice The latest anchored checkpoint and its block timestamp; all zero before the first anchor.
    function latest() external view returns (uint256 anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp);

    /// @notice The root anchored for exactly `treeSize`; zero if none. Its time is its Anchored event's block's.
    function rootAt(uint64 treeSize) external view returns (bytes32 rootHash);

    /**
     * @notice Whether `leafHash` is entry `leafIndex` of the anchored tree of `treeSize`.
     * @dev `proof` is an RFC 9162 §2.1.3 inclusion proof. Returns false (never reverts) for
     * an unanchored size, an index outside the tree or a proof that does not lead to the root.
     */
    function verifyInclusion(uint64 treeSize, uint64 leafIndex, bytes32 leafHash, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The interface version this contract implements: 2 (version 1 has no such function).
    function interfaceVersion() external pure returns (uint256);
}

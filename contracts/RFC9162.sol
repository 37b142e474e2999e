// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @title RFC9162
 * @notice Verification of RFC 9162 §2.1 Merkle proofs with SHA-256 (the 0x02 precompile):
 * leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || left || right)`.
 * The algorithms are the RFC's §2.1.3.2 and §2.1.4.2, step for step.
 */
library RFC9162 {
    /// @dev `SHA-256(0x01 || left || right)`, through the precompile, in scratch memory.
    function nodeHash(bytes32 left, bytes32 right) internal view returns (bytes32 hash) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
            hash := mload(0x00)
        }
    }

    /**
     * @notice The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
     * @return ok False when the proof has the wrong length for `index` and `size`, or `index >= size`.
     */
    function rootFromInclusionProof(uint256 index, uint256 size, bytes32 leafHash, bytes32[] calldata proof)
        internal
        view
        returns (bool ok, bytes32 root)
    {
        if (index >= size) return (false, bytes32(0));
        uint256 fn = index;
        uint256 sn = size - 1;
        root = leafHash;
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return (false, bytes32(0));
            if (fn & 1 == 1 || fn == sn) {
                root = nodeHash(proof[i], root);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                root = nodeHash(root, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return (sn == 0, root);
    }

    /**
     * @notice Whether the tree (`size2`, `root2`) extends (`size1`, `root1`) (RFC 9162 §2.1.4.2).
     * @dev Also accepts, with an empty proof, `size1 == 0` and `size1 == size2` with equal roots.
     */
    function verifyConsistency(
        uint256 size1,
        uint256 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof
    ) internal view returns (bool) {
        if (size1 > size2) return false;
        if (size1 == size2) return proof.length == 0 && root1 == root2;
        if (size1 == 0) return proof.length == 0;
        if (proof.length == 0) return false;
        // Step 2: when size1 is a power of two, the path starts with root1 itself.
        uint256 start;
        bytes32 fr;
        if (size1 & (size1 - 1) == 0) {
            fr = root1;
        } else {
            fr = proof[0];
            start = 1;
        }
        bytes32 sr = fr;
        uint256 fn = size1 - 1;
        uint256 sn = size2 - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        for (uint256 i = start; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = nodeHash(c, fr);
                sr = nodeHash(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = nodeHash(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == root1 && sr == root2;
    }

    /**
     * @notice {verifyConsistency} (RFC 9162 §2.1.4.2, same answers for every input) at about half
     * its gas: one loop in assembly over the calldata proof, hashing in scratch memory.
     * @dev ProcurementAnchorV2 uses it; version 1 keeps {verifyConsistency}, so that its deployed
     * bytecode is what this source still compiles to.
     */
    function isConsistent(uint256 size1, uint256 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        internal
        view
        returns (bool ok)
    {
        // The usual case (0 < size1 < size2, a proof) in one test; the others as verifyConsistency.
        bool usual;
        assembly ("memory-safe") {
            usual := and(lt(size1, size2), iszero(or(iszero(size1), iszero(proof.length))))
        }
        if (!usual) {
            if (size1 > size2) return false;
            if (size1 == size2) return proof.length == 0 && root1 == root2;
            return size1 == 0 && proof.length == 0;
        }
        assembly ("memory-safe") {
            let p := proof.offset
            let end := add(p, shl(5, proof.length))
            // Step 2: when size1 is a power of two, the path starts with root1 itself.
            let fr := root1
            if and(size1, sub(size1, 1)) {
                fr := calldataload(p)
                p := add(p, 32)
            }
            let sr := fr
            let fn := sub(size1, 1)
            let sn := sub(size2, 1)
            for {} and(fn, 1) {} {
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            // The calls' success is not checked: the precompile fails only for lack of gas, and
            // then this frame keeps at most 1/64 of under 100 gas (all but 1/64 is forwarded),
            // too little for the next instruction, so the transaction runs out of gas.
            // 0x01 || left || right at the free memory pointer (not allocated: scratch only).
            let ptr := mload(0x40)
            let left := add(ptr, 1)
            let right := add(ptr, 33)
            mstore8(ptr, 0x01)
            ok := 1
            for {} lt(p, end) { p := add(p, 32) } {
                if iszero(sn) {
                    ok := 0
                    break
                }
                let c := calldataload(p)
                if iszero(or(and(fn, 1), eq(fn, sn))) {
                    mstore(left, sr)
                    mstore(right, c)
                    pop(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20))
                    sr := mload(0x00)
                    fn := shr(1, fn)
                    sn := shr(1, sn)
                    continue
                }
                mstore(left, c)
                mstore(right, fr)
                pop(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20))
                fr := mload(0x00)
                mstore(right, sr)
                pop(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20))
                sr := mload(0x00)
                // While fn is even and not zero, halve fn and sn. fn is even here only when it
                // equals sn: divide both by fn's lowest set bit.
                if iszero(and(fn, 1)) {
                    if fn { fn := div(fn, and(fn, sub(0, fn))) }
                    sn := fn
                }
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            ok := and(ok, and(iszero(sn), and(eq(fr, root1), eq(sr, root2))))
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {RFC9162} from "../RFC9162.sol";

/// @notice Test-only: the library's consistency checks as external calls, to run them over the vectors.
contract RFC9162Harness {
    function verifyConsistency(uint256 size1, uint256 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return RFC9162.verifyConsistency(size1, size2, root1, root2, proof);
    }

    function isConsistent(uint256 size1, uint256 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return RFC9162.isConsistent(size1, size2, root1, root2, proof);
    }
}

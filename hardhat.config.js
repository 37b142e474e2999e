// Hardhat 2 build of the anchor contract, fully offline: the compiler is the npm `solc`
// package (solc-js), never a download. Compiler version and settings come from
// contracts/compiler.json, which the Python build (anchoring/compile.py) reads too, so both
// produce the same bytecode.
const path = require("path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
require("@nomicfoundation/hardhat-ethers");
require("@nomicfoundation/hardhat-chai-matchers");

const compiler = require("./contracts/compiler.json");

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== compiler.version) return runSuper();
  const solc = require("solc");
  return {
    compilerPath: path.join(path.dirname(require.resolve("solc")), "soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version().replace(/\.Emscripten\.clang$/, ""),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: { version: compiler.version, settings: compiler.settings },
  paths: {
    sources: "./contracts",
    tests: "./contracts/test",
    cache: "./build/hardhat/cache",
    artifacts: "./build/hardhat/artifacts",
  },
  networks: { hardhat: { hardfork: compiler.settings.evmVersion } },
  mocha: { timeout: 120000 },
};

// The committed artifact (built by py-solc-x, anchoring/compile.py) is what Hardhat builds.
const { expect } = require("chai");
const { artifacts } = require("hardhat");
const committed = require("../../anchoring/artifacts/ProcurementAnchor.json");
const compiler = require("../compiler.json");

describe("committed artifact", function () {
  it("has the bytecode and ABI Hardhat compiles from the same sources and settings", async function () {
    const built = await artifacts.readArtifact("ProcurementAnchor");
    expect(committed.compiler.version.startsWith(compiler.version + "+")).to.equal(true);
    expect(committed.compiler.settings).to.deep.equal(compiler.settings);
    expect(built.bytecode).to.equal(committed.bytecode);
    expect(built.deployedBytecode).to.equal(committed.deployedBytecode);
    expect(built.abi).to.deep.equal(committed.abi);
  });
});

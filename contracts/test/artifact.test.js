// The committed artifacts (built by py-solc-x, anchoring/compile.py) are what Hardhat builds.
const { expect } = require("chai");
const { artifacts } = require("hardhat");
const compiler = require("../compiler.json");

for (const name of ["ProcurementAnchor", "ProcurementAnchorV2"]) {
  describe(`committed artifact ${name}`, function () {
    it("has the bytecode and ABI Hardhat compiles from the same sources and settings", async function () {
      const committed = require(`../../anchoring/artifacts/${name}.json`);
      const built = await artifacts.readArtifact(name);
      expect(committed.compiler.version.startsWith(compiler.version + "+")).to.equal(true);
      expect(committed.compiler.settings).to.deep.equal(compiler.settings);
      expect(built.bytecode).to.equal(committed.bytecode);
      expect(built.deployedBytecode).to.equal(committed.deployedBytecode);
      expect(built.abi).to.deep.equal(committed.abi);
    });
  });
}

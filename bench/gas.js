// Gas of anchor() for both contract versions (V1 ProcurementAnchor, V2 ProcurementAnchorV2) at
// log sizes 10, 1,000 and 1,000,000, for several batch sizes (entries since the previous anchor),
// plus the costliest previous size at 1,000,000 (the longest proof with the most hashing), the
// event-only floor with the same calldata, and verifyInclusion at 1,000,000.
//   npx hardhat run bench/gas.js
// A tree of identical leaves stands in for a real log: every perfect subtree of height h has
// the same hash, so roots and proofs of any size come cheap, with the real proof lengths.
const { ethers } = require("hardhat");
const { createHash } = require("crypto");

const sha = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const perfect = [sha(Buffer.from([0]), Buffer.from("entry"))];
for (let h = 1; h < 64; h++) perfect.push(sha(Buffer.from([1]), perfect[h - 1], perfect[h - 1]));
const split = (n) => 2 ** Math.floor(Math.log2(n - 1));
const mth = (n) => {
  if ((n & (n - 1)) === 0) return perfect[Math.log2(n)];
  const k = split(n);
  return sha(Buffer.from([1]), mth(k), mth(n - k));
};
// RFC 9162 SUBPROOF over sizes only (all leaves alike, so a range's hash depends on its size).
const subproof = (m, n, complete) => {
  if (m === n) return complete ? [] : [mth(n)];
  const k = split(n);
  return m <= k ? [...subproof(m, k, complete), mth(n - k)] : [...subproof(m - k, n - k, false), mth(k)];
};
const path = (m, n) => {
  if (n === 1) return [];
  const k = split(n);
  return m < k ? [...path(m, k), mth(n - k)] : [...path(m - k, n - k), mth(k)];
};
const hex = (b) => "0x" + b.toString("hex");

async function gasOfAnchor(size, batch, name) {
  const [admin] = await ethers.getSigners();
  const contract = await ethers.deployContract(name, [admin.address]);
  const before = size - batch;
  await (await contract.anchor(before, hex(mth(before)), [])).wait();
  const proof = subproof(before, size, true).map(hex);
  const receipt = await (await contract.anchor(size, hex(mth(size)), proof)).wait();
  return { gas: Number(receipt.gasUsed), proof: proof.length, contract };
}

async function main() {
  const rows = [];
  for (const [size, batches] of [[10, [1, 5]], [1000, [1, 100, 500]], [1000000, [1, 100, 1000, 10000, 100000]]]) {
    for (const batch of batches) {
      const v1 = await gasOfAnchor(size, batch, "ProcurementAnchor");
      const v2 = await gasOfAnchor(size, batch, "ProcurementAnchorV2");
      rows.push({ "log size": size, "batch (entries since last anchor)": batch, "proof hashes": v2.proof, "V1 anchor gas": v1.gas, "V2 anchor gas": v2.gas });
    }
  }
  // The previous size whose proof to 1,000,000 costs most to check: 21 hashes, 38 SHA-256 calls.
  const worst = 1000000 - 524287;
  const w1 = await gasOfAnchor(1000000, worst, "ProcurementAnchor");
  const w2 = await gasOfAnchor(1000000, worst, "ProcurementAnchorV2");
  rows.push({ "log size": 1000000, "batch (entries since last anchor)": `${worst} (costliest)`, "proof hashes": w2.proof, "V1 anchor gas": w1.gas, "V2 anchor gas": w2.gas });
  const floors = {};
  for (const before of [999000, 524287]) {
    const eventOnly = await ethers.deployContract("EventOnly");
    await (await eventOnly.anchor(1, hex(mth(1)), [])).wait();
    floors[before] = Number((await (await eventOnly.anchor(1000000, hex(mth(1000000)), subproof(before, 1000000, true).map(hex))).wait()).gasUsed);
  }
  const floor = floors[999000];
  const { contract } = await gasOfAnchor(1000000, 1000, "ProcurementAnchorV2");
  const index = 765432;
  const inclusion = path(index, 1000000).map(hex);
  const viewGas = Number(await contract.verifyInclusion.estimateGas(1000000, index, hex(perfect[0]), inclusion));
  const ok = await contract.verifyInclusion(1000000, index, hex(perfect[0]), inclusion);
  console.table(rows);
  const v2At1000 = rows.find((r) => r["log size"] === 1000000 && r["batch (entries since last anchor)"] === 1000)["V2 anchor gas"];
  console.log(`event-only floor (same calldata, emit Anchored only), 1,000,000 after 999,000: ${floor} gas; V2 / floor ${(v2At1000 / floor).toFixed(2)}`);
  console.log(`event-only floor, 1,000,000 after 524,287 (costliest): ${floors[524287]} gas; V2 / floor ${(w2.gas / floors[524287]).toFixed(2)}`);
  console.log(`verifyInclusion at 1,000,000 entries (${inclusion.length} hashes), as a transaction: ${viewGas} gas; result ${ok}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

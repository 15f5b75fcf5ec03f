//! The process group: MPI's world communicator (rsmpi) and the few
//! collective steps a distributed evaluation needs, each in rank order so
//! that results never depend on message timing.

use gen_metrics_linalg::{AccumulatorParts, GaussianAccumulator};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Destination, Source};
use ndarray::{Array1, Array2, ArrayView2};

use crate::{DistError, ranks};

/// Elements per point-to-point message: MPI counts are 32-bit, so large
/// matrices travel in pieces of at most this many values.
const CHUNK: usize = 1 << 26;

/// The MPI world: every process started by `mpirun`. Dropping it finalizes
/// MPI.
pub struct Group {
    world: SimpleCommunicator,
    // Dropped after `world` (fields drop in order): finalizes MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish()
    }
}

impl Group {
    /// Initializes MPI (once per process).
    ///
    /// # Errors
    /// [`DistError::Ranks`] when MPI was initialized already.
    pub fn init() -> Result<Group, DistError> {
        let universe = mpi::initialize()
            .ok_or_else(|| DistError::Ranks("MPI was initialized already".into()))?;
        Ok(Group {
            world: universe.world(),
            _universe: universe,
        })
    }

    /// Whether this process was started by an MPI launcher (`mpirun`,
    /// `srun`): the environment variables Open MPI, PMI and PMIx set.
    pub fn launched() -> bool {
        ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        usize::try_from(self.world.rank()).unwrap_or(0)
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        usize::try_from(self.world.size()).unwrap_or(1)
    }

    /// Whether this is rank 0 (which writes the report).
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Ends every rank of the job now (`MPI_Abort`) with exit code `code`:
    /// what a rank does after an error, so that no rank waits forever in a
    /// collective step.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits for every rank.
    pub fn barrier(&self) {
        self.world.barrier();
    }

    /// Every rank's `value`, in rank order, on every rank.
    pub fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut out = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut out[..]);
        out
    }

    fn send_f64(&self, to: usize, data: &[f64]) {
        let p = self.world.process_at_rank(to as i32);
        for c in data.chunks(CHUNK) {
            p.send(c);
        }
    }

    fn receive_f64(&self, from: usize, out: &mut [f64]) {
        let p = self.world.process_at_rank(from as i32);
        for c in out.chunks_mut(CHUNK) {
            p.receive_into(c);
        }
    }

    /// Gathers each rank's rows to rank 0 in rank order (`None` on the
    /// other ranks). With `selection` (sorted global row indices, the same
    /// on every rank: [`crate::cap_selection`]), only those rows travel.
    /// Rank 0 needs `rows × d × 4` bytes, the others nothing more.
    ///
    /// # Errors
    /// [`DistError::Ranks`] when the ranks' feature dimensions differ.
    pub fn gather_rows(
        &self,
        local: ArrayView2<'_, f32>,
        selection: Option<&[usize]>,
    ) -> Result<Option<Array2<f32>>, DistError> {
        let counts = self.all_gather_u64(local.nrows() as u64);
        let dims = self.all_gather_u64(local.ncols() as u64);
        let d = dims[0] as usize;
        if let Some(r) = dims.iter().position(|&x| x as usize != d) {
            return Err(DistError::Ranks(format!(
                "rank {r} has {}-d features, rank 0 {d}-d",
                dims[r]
            )));
        }
        let offsets: Vec<usize> = counts
            .iter()
            .scan(0usize, |acc, &c| {
                let o = *acc;
                *acc += c as usize;
                Some(o)
            })
            .collect();
        // The local rows (indices into `local`) rank `r` sends.
        let picks = |r: usize| -> Vec<usize> {
            let (lo, hi) = (offsets[r], offsets[r] + counts[r] as usize);
            match selection {
                None => (0..hi - lo).collect(),
                Some(s) => {
                    let a = s.partition_point(|&i| i < lo);
                    let b = s.partition_point(|&i| i < hi);
                    s[a..b].iter().map(|&i| i - lo).collect()
                }
            }
        };
        let rank = self.rank();
        let mine = picks(rank);
        if rank != 0 {
            let p = self.world.process_at_rank(0);
            let rows_per_chunk = (CHUNK / d.max(1)).max(1);
            for block in mine.chunks(rows_per_chunk) {
                let mut buf = Vec::with_capacity(block.len() * d);
                for &i in block {
                    buf.extend(local.row(i).iter().copied());
                }
                p.send(&buf[..]);
            }
            return Ok(None);
        }
        let total: usize = (0..self.size()).map(|r| picks(r).len()).sum();
        let mut out = Vec::with_capacity(total * d);
        for &i in &mine {
            out.extend(local.row(i).iter().copied());
        }
        for r in 1..self.size() {
            let n = picks(r).len();
            let start = out.len();
            out.resize(start + n * d, 0.0);
            let rows_per_chunk = (CHUNK / d.max(1)).max(1);
            let p = self.world.process_at_rank(r as i32);
            for c in out[start..].chunks_mut(rows_per_chunk * d.max(1)) {
                p.receive_into(c);
            }
        }
        Array2::from_shape_vec((total, d), out)
            .map(Some)
            .map_err(ranks)
    }

    /// Gathers each rank's bytes to rank 0 in rank order (`None` elsewhere).
    pub fn gather_bytes(&self, local: &[u8]) -> Option<Vec<Vec<u8>>> {
        if self.rank() != 0 {
            let p = self.world.process_at_rank(0);
            p.send(&(local.len() as u64));
            if !local.is_empty() {
                p.send(local);
            }
            return None;
        }
        let mut out = vec![local.to_vec()];
        for r in 1..self.size() {
            let p = self.world.process_at_rank(r as i32);
            let (len, _) = p.receive::<u64>();
            let mut buf = vec![0u8; len as usize];
            if len > 0 {
                p.receive_into(&mut buf[..]);
            }
            out.push(buf);
        }
        Some(out)
    }

    /// Merges every rank's accumulator into rank 0's (`None` elsewhere), in
    /// rank order over a binary tree: at step `s = 1, 2, 4, ...` rank `r`
    /// with `r mod 2s = 0` merges the state of rank `r + s` (the next
    /// contiguous shards) after its own. Each rank holds at most two
    /// `d × d` float64 states.
    ///
    /// # Errors
    /// [`DistError::Ranks`] for mismatched dimensions or an invalid state.
    pub fn reduce_gaussian(
        &self,
        local: GaussianAccumulator,
    ) -> Result<Option<GaussianAccumulator>, DistError> {
        let d = local.dim();
        let dims = self.all_gather_u64(d as u64);
        if let Some(r) = dims.iter().position(|&x| x as usize != d) {
            return Err(DistError::Ranks(format!(
                "rank {r} has {}-d features, this rank {d}-d",
                dims[r]
            )));
        }
        let (rank, size) = (self.rank(), self.size());
        let mut acc = local;
        let mut step = 1;
        while step < size {
            if rank.is_multiple_of(2 * step) {
                let from = rank + step;
                if from < size {
                    let p = self.world.process_at_rank(from as i32);
                    let (n, _) = p.receive::<u64>();
                    let mut mean = vec![0.0; d];
                    self.receive_f64(from, &mut mean);
                    let mut comoment = vec![0.0; d * d];
                    self.receive_f64(from, &mut comoment);
                    let parts = AccumulatorParts {
                        n: n as usize,
                        mean: Array1::from_vec(mean),
                        comoment: Array2::from_shape_vec((d, d), comoment).map_err(ranks)?,
                    };
                    let other = GaussianAccumulator::from_parts(parts).map_err(ranks)?;
                    acc.merge(&other).map_err(ranks)?;
                }
            } else {
                let to = rank - step;
                let parts = acc.to_parts();
                self.world
                    .process_at_rank(to as i32)
                    .send(&(parts.n as u64));
                let mean = parts.mean.to_vec();
                self.send_f64(to, &mean);
                let comoment: Vec<f64> = parts.comoment.iter().copied().collect();
                self.send_f64(to, &comoment);
                return Ok(None);
            }
            step *= 2;
        }
        Ok(Some(acc))
    }
}

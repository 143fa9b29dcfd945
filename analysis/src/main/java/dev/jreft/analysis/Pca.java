package dev.jreft.analysis;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Principal components of representations [n, d] (rows are examples): the centred data's covariance eigenvectors
 * with the largest eigenvalues (LAPACK's symmetric eigensolver, in float64), the projection of the data on them and
 * the share of the variance each explains.
 */
public record Pca(INDArray mean, INDArray components, double[] explainedVariance) {
    /** The top {@code k} components of {@code x}. */
    public static Pca fit(INDArray x, int k) {
        if (x.rank() != 2 || x.size(0) < 2) {
            throw new IllegalArgumentException("PCA needs a matrix [n, d] with n >= 2; found shape "
                    + java.util.Arrays.toString(x.shape()));
        }
        long d = x.size(1);
        if (k < 1 || k > d) {
            throw new dev.jreft.hooks.io.ConfigException("components", k, "an integer in 1.." + d);
        }
        INDArray data = x.castTo(DataType.DOUBLE);
        INDArray mean = data.mean(0);
        INDArray centred = data.subRowVector(mean);
        INDArray cov = centred.transpose().mmul(centred).divi(x.size(0) - 1);
        INDArray vectors = cov.dup('f');
        INDArray values = org.nd4j.linalg.eigen.Eigen.symmetricGeneralizedEigenvalues(vectors, true); // ascending
        double total = values.sumNumber().doubleValue();
        INDArray top = org.nd4j.linalg.factory.Nd4j.create(DataType.DOUBLE, d, k);
        double[] explained = new double[k];
        for (int j = 0; j < k; j++) {
            long col = d - 1 - j;
            INDArray v = vectors.get(NDArrayIndex.all(), NDArrayIndex.point(col)).dup();
            // a sign convention, so the same data gives the same picture: the largest entry is positive
            long arg = org.nd4j.linalg.factory.Nd4j.argMax(org.nd4j.linalg.ops.transforms.Transforms.abs(v, true))
                    .getLong(0);
            if (v.getDouble(arg) < 0) {
                v.negi();
            }
            top.putColumn(j, v);
            explained[j] = values.getDouble(col) / total;
        }
        return new Pca(mean, top, explained);
    }

    /** {@code x} [n, d] in the components' coordinates [n, k]. */
    public INDArray project(INDArray x) {
        return x.castTo(DataType.DOUBLE).subRowVector(mean).mmul(components);
    }
}

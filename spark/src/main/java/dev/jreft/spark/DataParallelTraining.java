package dev.jreft.spark;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ReftClassifier;
import dev.jreft.training.Replicas;
import dev.jreft.training.TrainConfig;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.TrainingResult;
import dev.jreft.training.data.LabelledText;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.SparkSession;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

import java.io.PrintStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Data-parallel training on Spark: one barrier task per worker. Every worker loads the model (one per executor JVM),
 * draws the same fresh parameters from the config's seed and walks the same shuffled global batches; at every step
 * it computes the gradient of its share of the batch and sums it, weighted by the share's size, with the others'
 * through the first worker (sockets met at the barrier), so all apply the global batch's update ({@link Replicas}). The
 * parameters therefore equal one process training on the same global batches, up to float rounding.
 */
public final class DataParallelTraining {
    private DataParallelTraining() {
    }

    /** Examples in a form a task closure carries. */
    record Examples(String[] texts, int[] labels, String[] sources) implements Serializable {
        static Examples of(List<LabelledText> list) {
            return new Examples(list.stream().map(LabelledText::text).toArray(String[]::new),
                    list.stream().mapToInt(LabelledText::label).toArray(),
                    list.stream().map(LabelledText::source).toArray(String[]::new));
        }

        List<LabelledText> list() {
            return IntStream.range(0, texts.length).mapToObj(i -> new LabelledText(texts[i], labels[i], sources[i]))
                    .toList();
        }
    }

    /** What the first worker sends back: its run and the trained values. */
    record Outcome(TrainingResult result, LinkedHashMap<String, float[]> values, LinkedHashMap<String, long[]> shapes)
            implements Serializable {
    }

    /**
     * Trains {@code classifier} (fresh from {@code config} and its seed) on {@code workers} barrier tasks and puts
     * the trained values into it. {@code configJson} is the config as written (each task reads it again, and loads
     * the model it names: a path as given, else shipped with {@code --files}); {@code model} and {@code tokenizer}
     * are the files the tasks load ({@code minilm} and null for the embedded model). Progress is printed by the
     * first worker.
     */
    public static TrainingResult train(SparkSession spark, String configJson, String source, String model,
                                       String tokenizer, ReftClassifier classifier, TrainConfig.Split split,
                                       TrainingArguments args, int workers, PrintStream out) {
        check(spark, args, workers);
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        RDD<Integer> ranks = jsc.parallelize(IntStream.range(0, workers).boxed().toList(), workers).rdd();
        ClassTag<Outcome> tag = ClassTag$.MODULE$.apply(Outcome.class);
        // RDDBarrier.mapPartitions, not mapPartitionsWithEvaluator: the latter's tasks get no BarrierTaskContext
        RDD<Outcome> outcomes = ranks.barrier().mapPartitions(new Worker(configJson, source, model, tokenizer,
                Examples.of(split.train()), Examples.of(split.dev()), out != null), false, tag);
        Outcome first = JavaRDD.fromRDD(outcomes, tag).collect().get(0);
        Map<String, INDArray> values = new LinkedHashMap<>();
        first.values().forEach((name, v) -> values.put(name, Nd4j.createFromArray(v).reshape(first.shapes()
                .get(name))));
        classifier.assign(values);
        return first.result();
    }

    /** Before any task: enough task slots for a barrier stage, and a batch every worker has a share of. */
    static void check(SparkSession spark, TrainingArguments args, int workers) {
        checkWorkers(spark, workers);
        Replicas.checkBatch(args.batchSize(), workers);
    }

    /** A barrier stage starts all its tasks at once: at most one worker per task slot. */
    static void checkWorkers(SparkSession spark, int workers) {
        int slots = spark.sparkContext().defaultParallelism();
        if (workers < 1 || workers > slots) {
            throw new ConfigException("--workers", workers, "1.." + slots + " (the task slots of "
                    + spark.sparkContext().master() + "; a barrier stage starts all its tasks at once)");
        }
    }

    /**
     * The workers' sum over a star of sockets: the barrier is only the rendezvous (Spark's barrier calls wait in steps
     * of a second, too slow for one call a training step). The first worker listens, the others connect to it; at
     * every sum each sends its weight and values, the first adds all up in rank order and sends every worker the
     * same doubles back.
     */
    static final class BarrierReplicas implements Replicas, AutoCloseable {
        /** How long a worker waits for the others' share of one step before the task fails. */
        private static final int STEP_TIMEOUT_MS = 30 * 60 * 1000;
        private final int rank;
        private final int count;
        private final ServerSocket server;
        private final Socket[] peers; // on the first worker: one per other rank; elsewhere: [0] to the first

        BarrierReplicas(BarrierTaskContext context) throws IOException {
            this.rank = context.partitionId();
            this.count = context.getTaskInfos().length;
            this.server = rank == 0 ? new ServerSocket(0, count) : null;
            String[] ports = context.allGather(server == null ? "" : Integer.toString(server.getLocalPort()));
            this.peers = new Socket[rank == 0 ? count : 1];
            if (rank == 0) {
                server.setSoTimeout(STEP_TIMEOUT_MS);
                for (int i = 1; i < count; i++) {
                    Socket s = server.accept();
                    s.setSoTimeout(STEP_TIMEOUT_MS);
                    s.setTcpNoDelay(true);
                    int from = new DataInputStream(s.getInputStream()).readInt();
                    peers[from] = s;
                }
            } else {
                String address = context.getTaskInfos()[0].address();
                String host = address.contains(":") ? address.substring(0, address.lastIndexOf(':')) : address;
                Socket s = new Socket(host, Integer.parseInt(ports[0]));
                s.setSoTimeout(STEP_TIMEOUT_MS);
                s.setTcpNoDelay(true);
                new DataOutputStream(s.getOutputStream()).writeInt(rank);
                peers[0] = s;
            }
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int count() {
            return count;
        }

        @Override
        public double[] sum(float[] values, double weight) {
            try {
                if (rank != 0) {
                    ByteBuffer b = ByteBuffer.allocate(8 + 4 * values.length);
                    b.putDouble(weight);
                    b.asFloatBuffer().put(values);
                    peers[0].getOutputStream().write(b.array());
                    byte[] back = new byte[8 * values.length];
                    new DataInputStream(peers[0].getInputStream()).readFully(back);
                    double[] s = new double[values.length];
                    ByteBuffer.wrap(back).asDoubleBuffer().get(s);
                    return s;
                }
                double[] s = new double[values.length];
                for (int i = 0; i < s.length; i++) {
                    s[i] = weight * values[i];
                }
                byte[] message = new byte[8 + 4 * values.length];
                for (int r = 1; r < count; r++) { // rank order: every run adds in the same order
                    new DataInputStream(peers[r].getInputStream()).readFully(message);
                    ByteBuffer m = ByteBuffer.wrap(message);
                    double w = m.getDouble();
                    FloatBuffer f = m.asFloatBuffer();
                    for (int i = 0; i < s.length; i++) {
                        s[i] += w * f.get(i);
                    }
                }
                ByteBuffer out = ByteBuffer.allocate(8 * s.length);
                out.asDoubleBuffer().put(s);
                for (int r = 1; r < count; r++) {
                    peers[r].getOutputStream().write(out.array());
                }
                return s;
            } catch (IOException e) {
                throw new UncheckedIOException("worker " + rank + " of " + count + " lost the others mid-step", e);
            }
        }

        @Override
        public void close() throws IOException {
            for (Socket s : peers) {
                if (s != null) {
                    s.close();
                }
            }
            if (server != null) {
                server.close();
            }
        }
    }

    /** One worker: the config's classifier, trained as one of the barrier's replicas. */
    static final class Worker extends AbstractFunction1<Iterator<Integer>, Iterator<Outcome>>
            implements Serializable {
        private final String configJson;
        private final String source;
        private final String model;
        private final String tokenizer;
        private final Examples train;
        private final Examples dev;
        private final boolean progress;

        Worker(String configJson, String source, String model, String tokenizer, Examples train, Examples dev,
               boolean progress) {
            this.configJson = configJson;
            this.source = source;
            this.model = model;
            this.tokenizer = tokenizer;
            this.train = train;
            this.dev = dev;
            this.progress = progress;
        }

        @Override
        public Iterator<Outcome> apply(Iterator<Integer> partition) {
            TrainConfig c = TrainConfig.parse(configJson, source);
            HookedModel m = ExecutorModels.get(model, tokenizer);
            TrainingArguments args = c.arguments();
            ReftClassifier classifier = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
            TrainingResult r;
            int rank;
            try (BarrierReplicas replicas = new BarrierReplicas(BarrierTaskContext.get())) {
                rank = replicas.rank();
                r = classifier.train(train.list(), dev.list(), args, progress && rank == 0 ? System.out : null,
                        replicas);
            } catch (IOException e) {
                throw new UncheckedIOException("worker could not reach the others", e);
            }
            List<Outcome> result = new ArrayList<>();
            if (rank == 0) {
                LinkedHashMap<String, float[]> values = new LinkedHashMap<>();
                LinkedHashMap<String, long[]> shapes = new LinkedHashMap<>();
                classifier.parameters().forEach((name, v) -> {
                    values.put(name, v.dup().reshape(v.length()).toFloatVector());
                    shapes.put(name, v.shape());
                });
                result.add(new Outcome(r, values, shapes));
            }
            return CollectionConverters.asScala(result.iterator());
        }
    }
}

"""Training on several devices or machines with tf.distribute.

Keras 3's model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585,
tensorflow/tensorflow#72388) and, for this two-optimizer model, under MirroredStrategy. So
replicas are driven by a small custom loop over `strategy.run`, while the step maths stays in
one place: `GANomaly.apply_step`, the same function `train_step` calls. The Keras callbacks of a
single-device fit (checkpoints, NaN guard, TensorBoard, history) run unchanged through a
CallbackList.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from .errors import ConfigError, WorkerLost

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def make_strategy(name: str, collective_timeout_s: float = 60.0) -> tf.distribute.Strategy:
    """A tf.distribute strategy by name. multiworker reads the standard TF_CONFIG."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy multiworker needs the TF_CONFIG environment variable on every "
                              "worker (see the README's 'Several GPUs or machines')")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError:
            raise ConfigError("TF_CONFIG is not valid JSON") from None
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout_s)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_default(strategy: tf.distribute.Strategy) -> bool:
    return strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.MirroredStrategy))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes artifacts (the chief task, or worker 0 where there is none)."""
    resolver = getattr(strategy.extended, "_cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def distribute(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy):
    """Shard by data (every worker reads the same pipeline and keeps its share of the batches)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def distributed_fit(model, dataset: tf.data.Dataset, epochs: int, strategy: tf.distribute.Strategy,
                    callbacks=(), initial_epoch: int = 0, verbose: int = 1) -> None:
    """Train with one replica per device; losses are global-batch means on every replica."""
    replicas = strategy.num_replicas_in_sync
    mean = tf.distribute.ReduceOp.MEAN

    @tf.function
    def step(batch):
        per_replica = strategy.run(model.apply_step, args=(batch, replicas))
        losses = {k: strategy.reduce(mean, v, axis=None) for k, v in per_replica.items()}
        model.reinit_discriminator_if_collapsed(losses["d_loss"])
        return losses

    steps = int(dataset.cardinality().numpy()) if dataset.cardinality() >= 0 else None
    callback_list = keras.callbacks.CallbackList(list(callbacks), add_progbar=verbose != 0, model=model,
                                                 verbose=verbose, epochs=epochs, steps=steps)
    callback_list.on_train_begin()
    distributed = distribute(dataset, strategy)
    position = {"epoch": initial_epoch, "step": 0}
    try:
        for epoch in range(initial_epoch, epochs):
            position.update(epoch=epoch, step=0)
            callback_list.on_epoch_begin(epoch)
            totals, count = {}, 0
            for i, batch in enumerate(distributed):
                position["step"] = i
                callback_list.on_train_batch_begin(i)
                losses = step(batch)
                count += 1
                for k, v in losses.items():  # reading the values is where a peer's failure surfaces
                    totals[k] = totals.get(k, 0.0) + float(v)
                callback_list.on_train_batch_end(i, {k: v / count for k, v in totals.items()})
            logs = {k: v / max(count, 1) for k, v in totals.items()}
            logs["d_reinits"] = float(np.asarray(model.d_reinits.numpy()))
            callback_list.on_epoch_end(epoch, logs)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError) as e:
        raise WorkerLost(
            f"a worker stopped answering in epoch {position['epoch'] + 1}, step {position['step'] + 1} "
            f"({type(e).__name__}); restart all workers with --resume RUN_DIR") from None
    callback_list.on_train_end()

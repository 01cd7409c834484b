-- A sample's project is its dataset's project: one foreign key on (dataset, project) says so, and that
-- both exist, with one check per inserted row instead of two (a bulk registration inserts thousands).
-- Deleting a project still deletes its samples, through its datasets.
CREATE UNIQUE INDEX datasets_id_project ON datasets (id, project_id);
ALTER TABLE samples
    DROP CONSTRAINT samples_project_id_fkey,
    DROP CONSTRAINT samples_dataset_id_fkey,
    ADD CONSTRAINT samples_dataset_project_fkey FOREIGN KEY (dataset_id, project_id)
        REFERENCES datasets (id, project_id) ON DELETE CASCADE;
